// bfloat16 tensors: the conversions to and from float32, and the element-wise kernels
// a bf16 network runs between its convolutions (the residual add, add + ReLU, the
// gradients). They read bfloat16 (or float32) values, compute in float32 and round the
// result to nearest even: the same values the float32 kernels give on the widened
// inputs, rounded once.
#include "bf16.h"

#include <immintrin.h>

#include "kernels.h"
#include "runtime.h"

namespace resnet {
namespace {

RESNET_MULTIVERSION_BF16 void narrowRange(const float* __restrict x, uint16_t* __restrict y, int64_t i, int64_t end) {
  for (; i < end; ++i) y[i] = narrow(x[i]);
}

// The same rounding in one instruction per 16 values where the CPU has AVX512_BF16.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) void narrowRangeBf16(const float* x, uint16_t* y,
                                                                                       int64_t i, int64_t end) {
  for (; i + 64 <= end; i += 64) {
    const __m256bh r0 = _mm512_cvtneps_pbh(_mm512_loadu_ps(x + i));
    const __m256bh r1 = _mm512_cvtneps_pbh(_mm512_loadu_ps(x + i + 16));
    const __m256bh r2 = _mm512_cvtneps_pbh(_mm512_loadu_ps(x + i + 32));
    const __m256bh r3 = _mm512_cvtneps_pbh(_mm512_loadu_ps(x + i + 48));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), reinterpret_cast<__m256i>(r0));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i + 16), reinterpret_cast<__m256i>(r1));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i + 32), reinterpret_cast<__m256i>(r2));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i + 48), reinterpret_cast<__m256i>(r3));
  }
  for (; i < end; i += 16) {
    const __mmask16 m = static_cast<__mmask16>(end - i >= 16 ? 0xffff : (1u << (end - i)) - 1);
    const __m256bh r = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, x + i));
    _mm256_mask_storeu_epi16(y + i, m, reinterpret_cast<__m256i>(r));
  }
}

RESNET_MULTIVERSION_BF16 void widenRange(const uint16_t* __restrict x, float* __restrict y, int64_t i, int64_t end) {
  for (; i < end; ++i) y[i] = widen(x[i]);
}

template <typename A, typename B>
__attribute__((always_inline)) inline void addLoop(const A* __restrict a, const B* __restrict b,
                                                   uint16_t* __restrict o, int64_t i, int64_t end, bool relu) {
  if (relu) {
    for (; i < end; ++i) {
      const float s = widen(a[i]) + widen(b[i]);
      o[i] = narrow(s > 0.0f ? s : 0.0f);
    }
  } else {
    for (; i < end; ++i) o[i] = narrow(widen(a[i]) + widen(b[i]));
  }
}

RESNET_MULTIVERSION_BF16 void addRange(const uint16_t* a, const uint16_t* b, uint16_t* o, int64_t i, int64_t end,
                                       bool relu) {
  addLoop(a, b, o, i, end, relu);
}
RESNET_MULTIVERSION_BF16 void addRange(const uint16_t* a, const float* b, uint16_t* o, int64_t i, int64_t end,
                                       bool relu) {
  addLoop(a, b, o, i, end, relu);
}
RESNET_MULTIVERSION_BF16 void addRange(const float* a, const float* b, uint16_t* o, int64_t i, int64_t end, bool relu) {
  addLoop(a, b, o, i, end, relu);
}

RESNET_MULTIVERSION_BF16 void addInPlaceRange(uint16_t* a, const uint16_t* __restrict b, int64_t i, int64_t end) {
  for (; i < end; ++i) a[i] = narrow(widen(a[i]) + widen(b[i]));
}

RESNET_MULTIVERSION_BF16 void reluBackwardRange(const uint16_t* __restrict dy, const uint16_t* __restrict y,
                                                uint16_t* __restrict dx, int64_t i, int64_t end) {
  // y > 0 as a bfloat16 is 1 <= bits <= 0x7f80 (sign clear, not zero, not NaN): one
  // unsigned compare and a mask, so the loop vectorises.
  for (; i < end; ++i) {
    const uint16_t keep = static_cast<uint16_t>(static_cast<uint16_t>(y[i] - 1u) < 0x7f80u ? 0xffffu : 0u);
    dx[i] = static_cast<uint16_t>(dy[i] & keep);
  }
}

// add and addRelu on any mix of float32 and bfloat16 inputs; the output is bfloat16.
Napi::Value addBf16(const Napi::CallbackInfo& info, const char* kernel, bool relu) {
  Call call(info, kernel);
  return call.run([&]() -> Napi::Value {
    StorageArg a = call.storage(0, "a");
    StorageArg b = call.storage(1, "b");
    call.expectLength(b, a.length, "b");
    Napi::Uint16Array out = newU16(call.env(), a.length);
    uint16_t* po = data(out);
    if (!a.bf16 && b.bf16) std::swap(a, b);  // addition commutes: bf16 first
    parallelFor(static_cast<int64_t>(a.length), kElementwiseGrain, [&](int64_t begin, int64_t end) {
      if (a.bf16 && b.bf16) {
        addRange(a.u16(), b.u16(), po, begin, end, relu);
      } else if (a.bf16) {
        addRange(a.u16(), b.f32(), po, begin, end, relu);
      } else {
        addRange(a.f32(), b.f32(), po, begin, end, relu);
      }
    });
    return out;
  });
}

}  // namespace

void roundToBf16(const float* x, uint16_t* y, int64_t n) {
  const bool native = cpuHasNativeBf16();
  parallelFor(n, kElementwiseGrain, [=](int64_t begin, int64_t end) {
    if (native) {
      narrowRangeBf16(x, y, begin, end);
    } else {
      narrowRange(x, y, begin, end);
    }
  });
}

void widenBf16(const uint16_t* x, float* y, int64_t n) {
  parallelFor(n, kElementwiseGrain, [=](int64_t begin, int64_t end) { widenRange(x, y, begin, end); });
}

// toBf16(x) -> x rounded to bfloat16
Napi::Value ToBf16(const Napi::CallbackInfo& info) {
  Call call(info, "toBf16");
  return call.run([&]() -> Napi::Value {
    const F32Arg x = call.f32(0, "x");
    Napi::Uint16Array y = newU16(call.env(), x.length);
    roundToBf16(x.data, data(y), static_cast<int64_t>(x.length));
    return y;
  });
}

// fromBf16(x) -> x as float32
Napi::Value FromBf16(const Napi::CallbackInfo& info) {
  Call call(info, "fromBf16");
  return call.run([&]() -> Napi::Value {
    const U16Arg x = call.u16(0, "x");
    Napi::Float32Array y = newF32(call.env(), x.length);
    widenBf16(x.data, data(y), static_cast<int64_t>(x.length));
    return y;
  });
}

// addBf16(a, b) = a + b
Napi::Value AddBf16(const Napi::CallbackInfo& info) { return addBf16(info, "addBf16", false); }

// addReluBf16(a, b) = relu(a + b)
Napi::Value AddReluBf16(const Napi::CallbackInfo& info) { return addBf16(info, "addReluBf16", true); }

// reluBackwardBf16(dy, y) = dy where y > 0, else 0
Napi::Value ReluBackwardBf16(const Napi::CallbackInfo& info) {
  Call call(info, "reluBackwardBf16");
  return call.run([&]() -> Napi::Value {
    const U16Arg dy = call.u16(0, "dy");
    const U16Arg y = call.u16(1, "y");
    call.expectLength(y, dy.length, "y");
    Napi::Uint16Array dx = newU16(call.env(), dy.length);
    uint16_t* pdx = data(dx);
    parallelFor(static_cast<int64_t>(dy.length), kElementwiseGrain,
                [&](int64_t begin, int64_t end) { reluBackwardRange(dy.data, y.data, pdx, begin, end); });
    return dx;
  });
}

// addInPlaceBf16(a, b): a += b (gradient accumulation)
Napi::Value AddInPlaceBf16(const Napi::CallbackInfo& info) {
  Call call(info, "addInPlaceBf16");
  return call.run([&]() -> Napi::Value {
    const U16Arg a = call.u16(0, "a");
    const U16Arg b = call.u16(1, "b");
    call.expectLength(b, a.length, "b");
    parallelFor(static_cast<int64_t>(a.length), kElementwiseGrain,
                [&](int64_t begin, int64_t end) { addInPlaceRange(a.data, b.data, begin, end); });
    return call.env().Undefined();
  });
}

}  // namespace resnet
