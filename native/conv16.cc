// The float32 3x3 stride-1 pad-1 convolution to 16 channels from 16 (ResNet-20/56/110's
// first stage and their plain twins) or from 1 or 3 (their stem), and its bf16 variant
// for 16 -> 16, as our own AVX-512 kernels. oneDNN 2.6 runs these layers well below the
// machine's peak, because with 16 output channels each input value it broadcasts feeds a
// single 16-wide multiply-add (one load per FMA). Here one broadcast feeds the three
// output pixels it is a tap of (kw = 0, 1, 2), with the three weight vectors of that tap
// row in registers, and up to 16 output pixels of a row accumulate in registers: (B + 2)
// broadcasts and 3 weight loads per 3 B FMAs.
//
// One layer, 16 -> 16 channels, bias + residual + ReLU, two threads, Zen 5 (a C++ probe
// against libdnnl, median of 41 calls): 32x32, batch 64, 0.77 ms against oneDNN's
// jit:avx512_core on nChw16c 1.12-1.54 ms; 28x28, batch 64, 0.59 against 0.67 ms; one
// thread, 32x32, 1.59 against 2.46 ms. In bf16 (28x28, batch 64, one thread) 0.56
// against oneDNN's jit_bf16 0.59-0.62 ms.
#include "conv16.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "bf16.h"
#include "runtime.h"

namespace resnet {
namespace {

#define RESNET_AVX512 __attribute__((target("avx512f")))
#define RESNET_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

// The end of a block: the residual added, ReLU, stored as float32 or rounded to bf16. res
// may be y itself (the output written over the residual): each pixel is read before it
// is written.
RESNET_AVX512 inline __m512 finish(__m512 v, const float* res, bool relu) {
  if (res != nullptr) v = _mm512_add_ps(v, _mm512_loadu_ps(res));
  return relu ? _mm512_max_ps(v, _mm512_setzero_ps()) : v;
}
RESNET_AVX512 inline void store(float* y, __m512 v) { _mm512_storeu_ps(y, v); }
RESNET_AVX512_BF16 inline void store(uint16_t* y, __m512 v) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(y), (__m256i)_mm512_cvtneps_pbh(v));
}

// The two arithmetics. Each has In and Out (x's and y's elements), kIn input channels and
// block<B, L, R>: B output pixels of row oh from column ow0, where L and R say whether the
// block touches the left or right padding (its tap column q = 0 or q = B + 1 is outside
// x). x is one image [h][w][kIn].
//
// Float32, from C channels: weights [kh][kw][C][16], one FMA per tap.
template <int C>
struct F32 {
  using In = float;
  using Out = float;
  static constexpr int kIn = C;

  template <int B, bool L, bool R>
  RESNET_AVX512 static void block(const float* x, int64_t h, int64_t w, int64_t oh, int64_t ow0, const float* wp,
                                 __m512 bias, const float* res, float* y, bool relu) {
    __m512 acc[B];
    for (int b = 0; b < B; b++) acc[b] = bias;
    for (int kh = 0; kh < 3; kh++) {
      const int64_t ih = oh + kh - 1;
      if (ih < 0 || ih >= h) continue;
      // Tap column q (0 .. B + 1) of the block is input column ow0 + q - 1.
      const float* xr = x + (ih * w + ow0 - 1) * C;
      const float* wk = wp + kh * 3 * C * 16;
#pragma GCC unroll 1
      for (int ic = 0; ic < C; ic++) {
        const __m512 w0 = _mm512_loadu_ps(wk + ic * 16);
        const __m512 w1 = _mm512_loadu_ps(wk + (C + ic) * 16);
        const __m512 w2 = _mm512_loadu_ps(wk + (2 * C + ic) * 16);
#pragma GCC unroll 40
        for (int q = 0; q < B + 2; q++) {
          if ((L && q == 0) || (R && q == B + 1)) continue;
          const __m512 xv = _mm512_set1_ps(xr[q * C + ic]);
          if (q < B) acc[q] = _mm512_fmadd_ps(xv, w0, acc[q]);
          if (q >= 1 && q - 1 < B) acc[q - 1] = _mm512_fmadd_ps(xv, w1, acc[q - 1]);
          if (q >= 2) acc[q - 2] = _mm512_fmadd_ps(xv, w2, acc[q - 2]);
        }
      }
    }
    for (int b = 0; b < B; b++) store(y + b * 16, finish(acc[b], res == nullptr ? nullptr : res + b * 16, relu));
  }
};

// bfloat16, 16 -> 16 channels: x bf16, weights bf16 as pairs of input channels per output
// channel ([kh][kw][ic / 2][oc][2]), each vdpbf16ps adding two input channels' products
// into the float32 accumulators (as oneDNN's avx512_core_bf16 kernels do); y bf16 or float32.
template <class Y>
struct Bf16 {
  using In = uint16_t;
  using Out = Y;
  static constexpr int kIn = 16;

  template <int B, bool L, bool R>
  RESNET_AVX512_BF16 static void block(const uint16_t* x, int64_t h, int64_t w, int64_t oh, int64_t ow0,
                                      const uint16_t* wp, __m512 bias, const float* res, Y* y, bool relu) {
    __m512 acc[B];
    for (int b = 0; b < B; b++) acc[b] = bias;
    for (int kh = 0; kh < 3; kh++) {
      const int64_t ih = oh + kh - 1;
      if (ih < 0 || ih >= h) continue;
      const uint16_t* xr = x + (ih * w + ow0 - 1) * 16;
      const uint16_t* wk = wp + kh * 3 * 256;
#pragma GCC unroll 1
      for (int i = 0; i < 8; i++) {
        const __m512bh w0 = (__m512bh)_mm512_loadu_si512(wk + i * 32);
        const __m512bh w1 = (__m512bh)_mm512_loadu_si512(wk + 256 + i * 32);
        const __m512bh w2 = (__m512bh)_mm512_loadu_si512(wk + 512 + i * 32);
#pragma GCC unroll 40
        for (int q = 0; q < B + 2; q++) {
          if ((L && q == 0) || (R && q == B + 1)) continue;
          int32_t pair;
          std::memcpy(&pair, xr + q * 16 + 2 * i, sizeof pair);
          const __m512bh xv = (__m512bh)_mm512_set1_epi32(pair);
          if (q < B) acc[q] = _mm512_dpbf16_ps(acc[q], xv, w0);
          if (q >= 1 && q - 1 < B) acc[q - 1] = _mm512_dpbf16_ps(acc[q - 1], xv, w1);
          if (q >= 2) acc[q - 2] = _mm512_dpbf16_ps(acc[q - 2], xv, w2);
        }
      }
    }
    for (int b = 0; b < B; b++) store(y + b * 16, finish(acc[b], res == nullptr ? nullptr : res + b * 16, relu));
  }
};

template <class K>
using BlockFn = void (*)(const typename K::In*, int64_t, int64_t, int64_t, int64_t, const typename K::In*, __m512,
                         const float*, typename K::Out*, bool);

constexpr int kMaxBlock = 16;

// A kind's blocks of B pixels by their edges (none, left, right, both), and by width.
template <class K, int B>
constexpr BlockFn<K> kEdges[4] = {K::template block<B, false, false>, K::template block<B, true, false>,
                                  K::template block<B, false, true>, K::template block<B, true, true>};
template <class K>
constexpr const BlockFn<K>* kByWidth[kMaxBlock + 1] = {
    nullptr,        kEdges<K, 1>,  kEdges<K, 2>,  kEdges<K, 3>,  kEdges<K, 4>,  kEdges<K, 5>,
    kEdges<K, 6>,   kEdges<K, 7>,  kEdges<K, 8>,  kEdges<K, 9>,  kEdges<K, 10>, kEdges<K, 11>,
    kEdges<K, 12>,  kEdges<K, 13>, kEdges<K, 14>, kEdges<K, 15>, kEdges<K, 16>};

// Output rows begin .. end (image * h + oh) of the convolution, a row in blocks of equal
// width, at most kMaxBlock pixels: 32 -> 16 + 16, 28 -> 14 + 14.
template <class K>
RESNET_AVX512 void rows(const typename K::In* x, int64_t h, int64_t w, const typename K::In* wp, const float* bias,
                        const float* residual, typename K::Out* y, bool relu, int64_t begin, int64_t end) {
  const __m512 bv = bias != nullptr ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
  const int64_t count = (w + kMaxBlock - 1) / kMaxBlock;
  const int64_t per = (w + count - 1) / count;
  for (int64_t r = begin; r < end; r++) {
    const int64_t image = r / h, oh = r % h;
    const typename K::In* xi = x + image * h * w * K::kIn;
    const int64_t row = r * w * 16;
    for (int64_t ow0 = 0; ow0 < w; ow0 += per) {
      const int64_t b = std::min(per, w - ow0);
      const int edges = (ow0 == 0 ? 1 : 0) | (ow0 + b == w ? 2 : 0);
      kByWidth<K>[b][edges](xi, h, w, oh, ow0, wp, bv, residual != nullptr ? residual + row + ow0 * 16 : nullptr,
                            y + row + ow0 * 16, relu);
    }
  }
}

// All rows of n images on the backend's threads. A row of 32 pixels is about 150k FLOPs
// at 16 input channels: 32 rows a thread at least, so that a small call does not pay for
// waking the other threads.
template <class K>
void run(const typename K::In* x, int64_t n, int64_t h, int64_t w, const typename K::In* wp, const float* bias,
         const float* residual, typename K::Out* y, bool relu) {
  parallelFor(n * h, 32,
              [&](int64_t begin, int64_t end) { rows<K>(x, h, w, wp, bias, residual, y, relu, begin, end); });
}

}  // namespace

bool conv16Channels(int64_t c) { return c == 1 || c == 3 || c == 16; }

namespace {

// The weight of tap k (kh * 3 + kw) from input channel `in` to output channel `out`: of
// w [16][c][3][3] forward; backward (dx = conv(dy, w'), c = 16), of w' [c][16][3][3] with
// w'[c'][o'][kh][kw] = w[o'][c'][2 - kh][2 - kw], so tap k of w' is tap 8 - k of w.
float tap(const float* oihw, int64_t c, bool backward, int64_t in, int64_t out, int64_t k) {
  return backward ? oihw[(in * c + out) * 9 + 8 - k] : oihw[(out * c + in) * 9 + k];
}

}  // namespace

void packConv16Weights(const float* oihw, int64_t c, bool backward, float* packed) {
  for (int64_t k = 0; k < 9; k++) {
    for (int64_t in = 0; in < c; in++) {
      for (int64_t out = 0; out < 16; out++) packed[(k * c + in) * 16 + out] = tap(oihw, c, backward, in, out, k);
    }
  }
}

void conv16(const float* x, int64_t n, int64_t h, int64_t w, int64_t c, const float* packed, const float* bias,
            const float* residual, float* y, bool relu) {
  auto kernel = c == 16 ? run<F32<16>> : c == 3 ? run<F32<3>> : run<F32<1>>;
  kernel(x, n, h, w, packed, bias, residual, y, relu);
}

void packConv16WeightsBf16(const float* oihw, bool backward, uint16_t* packed) {
  // Pair i of input channels 2i and 2i + 1, per output channel.
  for (int64_t k = 0; k < 9; k++) {
    for (int64_t i = 0; i < 8; i++) {
      for (int64_t out = 0; out < 16; out++) {
        for (int64_t j = 0; j < 2; j++) {
          packed[((k * 8 + i) * 16 + out) * 2 + j] = narrow(tap(oihw, 16, backward, 2 * i + j, out, k));
        }
      }
    }
  }
}

void conv16Bf16(const uint16_t* x, int64_t n, int64_t h, int64_t w, const uint16_t* packed, const float* bias,
                const float* residual, void* y, bool yBf16, bool relu) {
  if (yBf16) {
    run<Bf16<uint16_t>>(x, n, h, w, packed, bias, residual, static_cast<uint16_t*>(y), relu);
  } else {
    run<Bf16<float>>(x, n, h, w, packed, bias, residual, static_cast<float*>(y), relu);
  }
}

}  // namespace resnet
