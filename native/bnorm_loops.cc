#include "bnorm_loops.h"

#include <algorithm>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RESNET_MULTIVERSION __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define RESNET_MULTIVERSION
#endif

namespace resnet {
namespace bnorm {
namespace {
// Rows summed in float before folding into double: short enough that the float
// partial sums keep ~7 significant digits, long enough to amortise the fold.
constexpr int64_t kBlockRows = 64;
}  // namespace

RESNET_MULTIVERSION
void shiftedMoments(const float* __restrict x, int64_t c, int64_t r0, int64_t r1, const float* __restrict shift,
                    double* __restrict s1, double* __restrict s2) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* __restrict row = x + r * c;
    for (int64_t k = 0; k < c; ++k) {
      const double d = static_cast<double>(row[k]) - static_cast<double>(shift[k]);
      s1[k] += d;
      s2[k] += d * d;
    }
  }
}

RESNET_MULTIVERSION
void normalize(const float* __restrict x, float* __restrict y, int64_t c, int64_t r0,
               int64_t r1, const float* __restrict center, const float* __restrict scale, const float* __restrict shift,
               bool relu) {
  // One loop per variant keeps the branches out of the vectorised body.
  if (relu) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* __restrict xr = x + r * c;
      float* __restrict yr = y + r * c;
      for (int64_t k = 0; k < c; ++k) {
        const float v = (xr[k] - center[k]) * scale[k] + shift[k];
        yr[k] = v > 0.0f ? v : 0.0f;
      }
    }
  } else {
    for (int64_t r = r0; r < r1; ++r) {
      const float* __restrict xr = x + r * c;
      float* __restrict yr = y + r * c;
      for (int64_t k = 0; k < c; ++k) yr[k] = (xr[k] - center[k]) * scale[k] + shift[k];
    }
  }
}

RESNET_MULTIVERSION
void gradMoments(const float* __restrict dy, const float* __restrict y, const float* __restrict x, int64_t c, int64_t r0,
                 int64_t r1, const float* __restrict mean, double* __restrict sg, double* __restrict sgx,
                 float* __restrict scratch) {
  float* __restrict f1 = scratch;
  float* __restrict f2 = scratch + c;
  for (int64_t b = r0; b < r1; b += kBlockRows) {
    const int64_t e = std::min(b + kBlockRows, r1);
    for (int64_t k = 0; k < c; ++k) f1[k] = f2[k] = 0.0f;
    if (y != nullptr) {
      for (int64_t r = b; r < e; ++r) {
        const float* __restrict dr = dy + r * c;
        const float* __restrict yr = y + r * c;
        const float* __restrict xr = x + r * c;
        for (int64_t k = 0; k < c; ++k) {
          const float d = dr[k];
          const float g = yr[k] > 0.0f ? d : 0.0f;
          f1[k] += g;
          f2[k] += g * (xr[k] - mean[k]);
        }
      }
    } else {
      for (int64_t r = b; r < e; ++r) {
        const float* __restrict dr = dy + r * c;
        const float* __restrict xr = x + r * c;
        for (int64_t k = 0; k < c; ++k) {
          f1[k] += dr[k];
          f2[k] += dr[k] * (xr[k] - mean[k]);
        }
      }
    }
    for (int64_t k = 0; k < c; ++k) {
      sg[k] += f1[k];
      sgx[k] += f2[k];
    }
  }
}

RESNET_MULTIVERSION
void gradInput(const float* __restrict dy, const float* __restrict y, const float* __restrict x, float* __restrict dx,
               int64_t c, int64_t r0, int64_t r1, const float* __restrict a, const float* __restrict b,
               const float* __restrict mean, const float* __restrict k0) {
  if (y != nullptr) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* __restrict dr = dy + r * c;
      const float* __restrict yr = y + r * c;
      const float* __restrict xr = x + r * c;
      float* __restrict out = dx + r * c;
      for (int64_t k = 0; k < c; ++k) {
        const float d = dr[k];
        const float g = yr[k] > 0.0f ? d : 0.0f;
        out[k] = a[k] * g + b[k] * (xr[k] - mean[k]) + k0[k];
      }
    }
  } else {
    for (int64_t r = r0; r < r1; ++r) {
      const float* __restrict dr = dy + r * c;
      const float* __restrict xr = x + r * c;
      float* __restrict out = dx + r * c;
      for (int64_t k = 0; k < c; ++k) out[k] = a[k] * dr[k] + b[k] * (xr[k] - mean[k]) + k0[k];
    }
  }
}

}  // namespace bnorm
}  // namespace resnet
