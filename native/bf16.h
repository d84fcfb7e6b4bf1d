// bfloat16 values (the upper 16 bits of a float32) as the kernels store them, and the
// conversions to and from float32.
#pragma once

#include <cstdint>
#include <cstring>

// Loops compiled for AVX2+FMA and for plain x86-64; the CPU picks the variant at load
// time. Those on bfloat16 also for AVX-512 (x86-64-v4), which widens and rounds 16 values
// an instruction: the batch-norm loops at 16 channels, batch 128, 32x32, ran forward 0.37
// against 0.66 ms and backward 0.42 against 0.65 ms on two threads; the float32 loops ran
// slower so (backward 0.75 against 0.50 ms) and keep the two variants.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RESNET_MULTIVERSION __attribute__((target_clones("arch=x86-64-v3", "default")))
#define RESNET_MULTIVERSION_BF16 __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define RESNET_MULTIVERSION
#define RESNET_MULTIVERSION_BF16
#endif

namespace resnet {

// The float32 a bfloat16 stands for (exact).
inline float widen(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
inline float widen(float f) { return f; }

// f rounded to the nearest bfloat16, ties to even; a NaN stays a (quiet) NaN.
inline uint16_t narrow(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  return static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? ((u >> 16) | 0x40u) : rounded);
}

// y = x rounded to bfloat16 (as narrow), n values, on every thread; one instruction per
// 16 values where the CPU has AVX512_BF16 (the one oneDNN's reorders use: the results are
// equal bit for bit). oneDNN 2.6's reorder of an activation runs no faster on two threads
// than on one (f32 -> bf16, 2M values, NHWC, cache-hot: 0.19 ms on two threads against
// 0.084 here, 0.14 against 0.16 on one).
void roundToBf16(const float* x, uint16_t* y, int64_t n);
// y = x widened to float32, n values, on every thread.
void widenBf16(const uint16_t* x, float* y, int64_t n);

}  // namespace resnet
