// Max, average and global average pooling on NHWC tensors and their gradients (inference
// max pooling may write, and global average pooling read, nChw16c).
// Plain loops: the channel axis is innermost and contiguous, so every window step
// is a vectorisable pass over C; images are spread across threads.
#include <immintrin.h>

#include <atomic>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels.h"
#include "runtime.h"

namespace resnet {
namespace {

struct PoolGeometry {
  int64_t n, h, w, c, kh, kw, sh, sw, ph, pw, oh, ow;
  size_t inSize() const { return static_cast<size_t>(n * h * w * c); }
  size_t outSize() const { return static_cast<size_t>(n * oh * ow * c); }
};

PoolGeometry geometry(Call& call, size_t shapeArg, size_t attrsArg) {
  const dims s = call.shape(shapeArg, "xShape", 4);
  const dims a = call.intFields(attrsArg, "attrs", {"kernelH", "kernelW", "strideH", "strideW", "padH", "padW"}, 0);
  call.describe("x " + shapeText(s) + ", kernel " + std::to_string(a[0]) + "x" + std::to_string(a[1]) +
                ", stride " + std::to_string(a[2]) + "x" + std::to_string(a[3]) + ", pad " + std::to_string(a[4]) +
                "x" + std::to_string(a[5]));
  PoolGeometry g{s[0], s[1], s[2], s[3], a[0], a[1], a[2], a[3], a[4], a[5], 0, 0};
  if (g.kh < 1 || g.kw < 1 || g.sh < 1 || g.sw < 1) throw ArgumentError("kernel and stride must be >= 1");
  // PyTorch's rule: otherwise a window could lie wholly in the padding.
  if (2 * g.ph > g.kh || 2 * g.pw > g.kw) throw ArgumentError("padding must be at most half the kernel");
  const int64_t spanH = g.h + 2 * g.ph - g.kh, spanW = g.w + 2 * g.pw - g.kw;
  if (spanH < 0 || spanW < 0) throw ArgumentError("the window does not fit the padded input");
  g.oh = spanH / g.sh + 1;
  g.ow = spanW / g.sw + 1;
  return g;
}

// One output pixel of max pooling: best[k] = the maximum over the window rows [hs, he)
// and columns [ws, we) of the image at px (w pixels a row), and where `arg` is given its
// index u * w + v. As PyTorch: start at the first cell inside the input with -inf, take
// a strictly greater value or a NaN, so the first maximum wins. Compiled for AVX-512 and
// AVX2 beside the baseline, picked when the addon loads: 4x the baseline's SSE2 on 64
// channels.
__attribute__((target_clones("avx512f", "avx2", "default")))
void maxPixel(float* best, int32_t* arg, const float* px, int64_t w, int64_t c, int64_t hs, int64_t he, int64_t ws,
              int64_t we) {
  for (int64_t k = 0; k < c; ++k) best[k] = -std::numeric_limits<float>::infinity();
  if (arg != nullptr) {
    const int32_t first = static_cast<int32_t>(hs * w + ws);
    for (int64_t k = 0; k < c; ++k) arg[k] = first;
  }
  for (int64_t u = hs; u < he; ++u) {
    for (int64_t v = ws; v < we; ++v) {
      const float* src = px + (u * w + v) * c;
      if (arg == nullptr) {
#pragma omp simd
        for (int64_t k = 0; k < c; ++k) {
          const float val = src[k];
          best[k] = (val > best[k] || val != val) ? val : best[k];
        }
        continue;
      }
      const int32_t idx = static_cast<int32_t>(u * w + v);
#pragma omp simd
      for (int64_t k = 0; k < c; ++k) {
        const float val = src[k];
        const bool take = val > best[k] || val != val;
        best[k] = take ? val : best[k];
        arg[k] = take ? idx : arg[k];
      }
    }
  }
}

int64_t clampLow(int64_t v) { return v < 0 ? 0 : v; }
int64_t clampHigh(int64_t v, int64_t hi) { return v > hi ? hi : v; }

// Where channels [k, k + 16) of output pixel (i, j) of image b start: in NHWC, or in nChw16c
// (`blocked`; k a multiple of 16).
int64_t outIndex(const PoolGeometry& g, bool blocked, int64_t b, int64_t i, int64_t j, int64_t k) {
  if (!blocked) return ((b * g.oh + i) * g.ow + j) * g.c + k;
  return (((b * (g.c / 16) + k / 16) * g.oh + i) * g.ow + j) * 16;
}

// The maxima alone (no indices) over output rows [begin, end) (of all images), in NHWC or
// nChw16c, each vector of 16 channels held in one register across the window; the rule is
// maxPixel's (strictly greater or a NaN takes the place). maxPixel keeps its maxima in the
// output between window cells and goes through the dispatch once a pixel. ResNet's stem
// pool (3x3 stride 2 of 112x112x64), alone, two threads, median of 41: one image 0.12-0.16
// against 0.23 ms with the input in cache, 0.25-0.28 against 0.32 without; sixteen 2.7-3.4
// against 3.9-4.1.
__attribute__((target("avx512f"))) void maxRowsAvx512(float* py, const float* px, const PoolGeometry& g,
                                                     bool blocked, int64_t begin, int64_t end) {
  const __m512 lowest = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t r = begin; r < end; ++r) {
    const int64_t b = r / g.oh, i = r % g.oh;
    const int64_t h0 = i * g.sh - g.ph;
    const int64_t hs = clampLow(h0), he = clampHigh(h0 + g.kh, g.h);
    const float* img = px + b * g.h * g.w * g.c;
    for (int64_t j = 0; j < g.ow; ++j) {
      const int64_t w0 = j * g.sw - g.pw;
      const int64_t ws = clampLow(w0), we = clampHigh(w0 + g.kw, g.w);
      for (int64_t k = 0; k < g.c; k += 16) {
        float* out = py + outIndex(g, blocked, b, i, j, k);
        __m512 best = lowest;
        for (int64_t u = hs; u < he; ++u) {
          const float* row = img + (u * g.w) * g.c + k;
          for (int64_t v = ws; v < we; ++v) {
            const __m512 val = _mm512_loadu_ps(row + v * g.c);
            const __mmask16 take =
                _mm512_cmp_ps_mask(val, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(val, val, _CMP_UNORD_Q);
            best = _mm512_mask_mov_ps(best, take, val);
          }
        }
        _mm512_storeu_ps(out, best);
      }
    }
  }
}

}  // namespace

// maxPool2d(x, xShape, [kh, kw, sh, sw, ph, pw], argmax, to? = 'nhwc') -> { y, argmax | null }
// Without argmax (inference) the maxima alone: no index array is made or written, and y
// may be written in nChw16c (`to`), x being NHWC either way.
Napi::Value MaxPool2d(const Napi::CallbackInfo& info) {
  Call call(info, "maxPool2d");
  return call.run([&]() -> Napi::Value {
    const F32Arg x = call.f32(0, "x");
    const PoolGeometry g = geometry(call, 1, 2);
    const bool withArgmax = call.boolean(3, "argmax");
    const bool blocked = layoutArg(info, 4) == tag::nChw16c;
    if (blocked) {
      checkChannels(tag::nChw16c, g.c, "y");
      if (withArgmax) throw ArgumentError("layout 'nchw16c' holds the maxima alone: argmax must be false");
    }
    call.expectLength(x, g.inSize(), "x");
    Napi::Env env = call.env();
    Napi::Float32Array y = newF32(env, g.outSize());
    Napi::Int32Array argmax = withArgmax ? newI32(env, g.outSize()) : Napi::Int32Array();
    const float* px = x.data;
    float* py = data(y);
    int32_t* pa = withArgmax ? argmax.Data() : nullptr;
    static const bool avx512 = __builtin_cpu_supports("avx512f");
    const bool registers = pa == nullptr && avx512 && g.c % 16 == 0;
    parallelFor(g.n * g.oh, 4, [&](int64_t begin, int64_t end) {
      if (registers) return maxRowsAvx512(py, px, g, blocked, begin, end);
      std::vector<float> pixel(blocked ? static_cast<size_t>(g.c) : 0);
      for (int64_t r = begin; r < end; ++r) {
        const int64_t b = r / g.oh, i = r % g.oh;
        const int64_t h0 = i * g.sh - g.ph;
        const int64_t hs = clampLow(h0), he = clampHigh(h0 + g.kh, g.h);
        for (int64_t j = 0; j < g.ow; ++j) {
          const int64_t w0 = j * g.sw - g.pw;
          const int64_t ws = clampLow(w0), we = clampHigh(w0 + g.kw, g.w);
          const int64_t o = (r * g.ow + j) * g.c;
          maxPixel(blocked ? pixel.data() : py + o, pa == nullptr ? nullptr : pa + o, px + b * g.h * g.w * g.c, g.w,
                   g.c, hs, he, ws, we);
          for (int64_t k = 0; blocked && k < g.c; k += 16) {
            std::memcpy(py + outIndex(g, true, b, i, j, k), pixel.data() + k, 16 * sizeof(float));
          }
        }
      }
    });
    Napi::Object out = Napi::Object::New(env);
    out.Set("y", y);
    out.Set("argmax", withArgmax ? Napi::Value(argmax) : env.Null());
    return out;
  });
}

// maxPool2dBackward(dy, argmax, xShape, attrs) -> dx
Napi::Value MaxPool2dBackward(const Napi::CallbackInfo& info) {
  Call call(info, "maxPool2dBackward");
  return call.run([&]() -> Napi::Value {
    const F32Arg dy = call.f32(0, "dy");
    const I32Arg argmax = call.i32(1, "argmax");
    const PoolGeometry g = geometry(call, 2, 3);
    call.expectLength(dy, g.outSize(), "dy");
    call.expectLength(argmax, g.outSize(), "argmax");
    Napi::Float32Array dx = newF32(call.env(), g.inSize());
    const float* pdy = dy.data;
    const int32_t* pa = argmax.data;
    float* pdx = data(dx);
    const int64_t plane = g.h * g.w;
    std::atomic<bool> badIndex{false};
    // Whole images per thread: the scatter never crosses images, so no races.
    parallelFor(g.n, 1, [&](int64_t begin, int64_t end) {
      std::memset(pdx + begin * plane * g.c, 0, sizeof(float) * (end - begin) * plane * g.c);
      for (int64_t b = begin; b < end; ++b) {
        float* img = pdx + b * plane * g.c;
        const int64_t base = b * g.oh * g.ow * g.c;
        for (int64_t o = 0; o < g.oh * g.ow; ++o) {
          for (int64_t k = 0; k < g.c; ++k) {
            const int32_t idx = pa[base + o * g.c + k];
            if (idx < 0 || idx >= plane) {
              badIndex.store(true, std::memory_order_relaxed);
              continue;
            }
            img[idx * g.c + k] += pdy[base + o * g.c + k];
          }
        }
      }
    });
    if (badIndex.load()) throw ArgumentError("argmax holds an index outside the input plane");
    return dx;
  });
}

// avgPool2d(x, xShape, attrs) -> y; padded cells count in the divisor (PyTorch's default).
Napi::Value AvgPool2d(const Napi::CallbackInfo& info) {
  Call call(info, "avgPool2d");
  return call.run([&]() -> Napi::Value {
    const F32Arg x = call.f32(0, "x");
    const PoolGeometry g = geometry(call, 1, 2);
    call.expectLength(x, g.inSize(), "x");
    Napi::Float32Array y = newF32(call.env(), g.outSize());
    const float* px = x.data;
    float* py = data(y);
    // In floor mode every window lies inside the padded input, so the divisor
    // with padding counted is always the full window.
    const float inv = 1.0f / static_cast<float>(g.kh * g.kw);
    parallelFor(g.n * g.oh, 4, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t b = r / g.oh, i = r % g.oh;
        const int64_t h0 = i * g.sh - g.ph;
        const int64_t hs = clampLow(h0), he = clampHigh(h0 + g.kh, g.h);
        for (int64_t j = 0; j < g.ow; ++j) {
          const int64_t w0 = j * g.sw - g.pw;
          const int64_t ws = clampLow(w0), we = clampHigh(w0 + g.kw, g.w);
          float* acc = py + (r * g.ow + j) * g.c;
          std::memset(acc, 0, sizeof(float) * g.c);
          for (int64_t u = hs; u < he; ++u) {
            for (int64_t v = ws; v < we; ++v) {
              const float* src = px + ((b * g.h + u) * g.w + v) * g.c;
#pragma omp simd
              for (int64_t k = 0; k < g.c; ++k) acc[k] += src[k];
            }
          }
#pragma omp simd
          for (int64_t k = 0; k < g.c; ++k) acc[k] *= inv;
        }
      }
    });
    return y;
  });
}

// avgPool2dBackward(dy, xShape, attrs) -> dx
Napi::Value AvgPool2dBackward(const Napi::CallbackInfo& info) {
  Call call(info, "avgPool2dBackward");
  return call.run([&]() -> Napi::Value {
    const F32Arg dy = call.f32(0, "dy");
    const PoolGeometry g = geometry(call, 1, 2);
    call.expectLength(dy, g.outSize(), "dy");
    Napi::Float32Array dx = newF32(call.env(), g.inSize());
    const float* pdy = dy.data;
    float* pdx = data(dx);
    const float inv = 1.0f / static_cast<float>(g.kh * g.kw);
    const int64_t plane = g.h * g.w;
    parallelFor(g.n, 1, [&](int64_t begin, int64_t end) {
      std::memset(pdx + begin * plane * g.c, 0, sizeof(float) * (end - begin) * plane * g.c);
      for (int64_t b = begin; b < end; ++b) {
        for (int64_t i = 0; i < g.oh; ++i) {
          const int64_t h0 = i * g.sh - g.ph;
          const int64_t hs = clampLow(h0), he = clampHigh(h0 + g.kh, g.h);
          for (int64_t j = 0; j < g.ow; ++j) {
            const int64_t w0 = j * g.sw - g.pw;
            const int64_t ws = clampLow(w0), we = clampHigh(w0 + g.kw, g.w);
            const float* grad = pdy + ((b * g.oh + i) * g.ow + j) * g.c;
            for (int64_t u = hs; u < he; ++u) {
              for (int64_t v = ws; v < we; ++v) {
                float* dst = pdx + ((b * g.h + u) * g.w + v) * g.c;
#pragma omp simd
                for (int64_t k = 0; k < g.c; ++k) dst[k] += grad[k] * inv;
              }
            }
          }
        }
      }
    });
    return dx;
  });
}

// globalAvgPool(x, xShape, layout? = 'nhwc') -> [N, C], x in `layout`
Napi::Value GlobalAvgPool(const Napi::CallbackInfo& info) {
  Call call(info, "globalAvgPool");
  return call.run([&]() -> Napi::Value {
    const F32Arg x = call.f32(0, "x");
    const dims s = call.shape(1, "xShape", 4);
    call.describe("x " + shapeText(s));
    const bool blocked = layoutArg(info, 2) == tag::nChw16c;
    const int64_t n = s[0], plane = s[1] * s[2], c = s[3];
    if (blocked) checkChannels(tag::nChw16c, c, "x");
    call.expectLength(x, static_cast<size_t>(n * plane * c), "x");
    Napi::Float32Array y = newF32(call.env(), static_cast<size_t>(n * c));
    const float* px = x.data;
    float* py = data(y);
    // Summed `width` channels at a time, over pixels `width` values apart: all C of them in
    // NHWC, in nChw16c each block of 16 (its plane after the one before).
    const int64_t width = blocked ? 16 : c;
    parallelFor(n, 1, [&](int64_t begin, int64_t end) {
      std::vector<double> acc(static_cast<size_t>(c));
      for (int64_t b = begin; b < end; ++b) {
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t k0 = 0; k0 < c; k0 += width) {
          double* a = acc.data() + k0;
          const float* first = px + b * plane * c + k0 * plane;
          for (int64_t p = 0; p < plane; ++p) {
            const float* src = first + p * width;
#pragma omp simd
            for (int64_t k = 0; k < width; ++k) a[k] += src[k];
          }
        }
        for (int64_t k = 0; k < c; ++k) py[b * c + k] = static_cast<float>(acc[k] / static_cast<double>(plane));
      }
    });
    return y;
  });
}

// globalAvgPoolBackward(dy, xShape) -> dx
Napi::Value GlobalAvgPoolBackward(const Napi::CallbackInfo& info) {
  Call call(info, "globalAvgPoolBackward");
  return call.run([&]() -> Napi::Value {
    const F32Arg dy = call.f32(0, "dy");
    const dims s = call.shape(1, "xShape", 4);
    call.describe("x " + shapeText(s));
    const int64_t n = s[0], plane = s[1] * s[2], c = s[3];
    call.expectLength(dy, static_cast<size_t>(n * c), "dy");
    Napi::Float32Array dx = newF32(call.env(), static_cast<size_t>(n * plane * c));
    const float* pdy = dy.data;
    float* pdx = data(dx);
    const float inv = static_cast<float>(1.0 / static_cast<double>(plane));
    parallelFor(n * plane, 256, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const float* grad = pdy + (r / plane) * c;
        float* dst = pdx + r * c;
#pragma omp simd
        for (int64_t k = 0; k < c; ++k) dst[k] = grad[k] * inv;
      }
    });
    return dx;
  });
}

}  // namespace resnet
