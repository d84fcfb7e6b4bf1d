// The loops of training-mode batch normalisation on an NHWC tensor seen as a
// [rows = N*H*W, C] matrix. Each loop walks a range of rows with the channel axis
// innermost (contiguous, vectorised). Compiled for AVX2+FMA and for plain x86-64;
// the CPU picks the variant at load time.
#pragma once

#include <cstdint>

namespace resnet {
namespace bnorm {

// s1[c] += sum(x - shift), s2[c] += sum((x - shift)^2) over rows [r0, r1). Float partial
// sums over short blocks of rows are folded into the double accumulators; the shift
// (any value near the mean, here the first row) keeps the squares from cancelling
// catastrophically when the mean is large against the spread.
void shiftedMoments(const float* x, int64_t c, int64_t r0, int64_t r1, const float* shift, double* s1, double* s2,
                    float* scratch);

// y = (x - center) * scale + shift, then + residual when given, then max(0, .) when relu.
// `center` is a value of x near the mean: x - center is exact, so large means lose
// nothing to the cancellation that x * scale - mean * scale would suffer.
void normalize(const float* x, const float* residual, float* y, int64_t c, int64_t r0, int64_t r1, const float* center,
               const float* scale, const float* shift, bool relu);

// g = relu ? (y > 0 ? dy : 0) : dy; sg[c] += sum(g), sgx[c] += sum(g * (x - mean)).
void gradMoments(const float* dy, const float* y, const float* x, int64_t c, int64_t r0, int64_t r1, const float* mean,
                 double* sg, double* sgx, float* scratch);

// dx = a * g + b * (x - mean) + k, with g as in gradMoments.
void gradInput(const float* dy, const float* y, const float* x, float* dx, int64_t c, int64_t r0, int64_t r1,
               const float* a, const float* b, const float* mean, const float* k);

}  // namespace bnorm
}  // namespace resnet
