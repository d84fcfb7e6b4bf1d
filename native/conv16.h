// A float32 3x3 stride-1 pad-1 convolution to 16 channels (from 1, 3 or 16) on NHWC arrays, an
// AVX-512 kernel of our own (conv16.cc says why); the caller checks that the CPU has
// AVX-512 (conv.cc: where oneDNN's ISA blocks channels by 16).
#pragma once

#include <cstdint>

namespace resnet {

// The input channel counts the kernel takes (1, 3 or 16; always 16 out).
bool conv16Channels(int64_t c);

// The packed weights' size for c input channels: 9 * c * 16.
constexpr int64_t conv16WeightsSize(int64_t c) { return 9 * c * 16; }

// OIHW weights [16][c][3][3] -> the kernel's layout [kh][kw][ic][oc]. `backward` (c = 16):
// those of the backward-data convolution, which is one of the same kind over dy with each
// filter mirrored and in and out swapped.
void packConv16Weights(const float* oihw, int64_t c, bool backward, float* packed);

// y = relu?(conv(x) + bias + residual) over x [n][h][w][c]; bias and residual may be
// null, residual may be y itself (the output written over it), x must not overlap y.
void conv16(const float* x, int64_t n, int64_t h, int64_t w, int64_t c, const float* packed, const float* bias,
            const float* residual, float* y, bool relu);

// The bfloat16 kernel, 16 -> 16 channels only: x bf16 (callers round float32 first),
// float32 accumulation, y rounded to bf16 (yBf16) or float32; bias and residual float32.
// Needs AVX512_BF16 (conv.cc: cpuHasNativeBf16).
constexpr int64_t kConv16Bf16WeightsSize = 9 * 16 * 16;
// OIHW weights [16][16][3][3] rounded to bf16 in the kernel's layout [kh][kw][ic / 2][oc][2];
// `backward` as for packConv16Weights.
void packConv16WeightsBf16(const float* oihw, bool backward, uint16_t* packed);
void conv16Bf16(const uint16_t* x, int64_t n, int64_t h, int64_t w, const uint16_t* packed, const float* bias,
                const float* residual, void* y, bool yBf16, bool relu);

}  // namespace resnet
