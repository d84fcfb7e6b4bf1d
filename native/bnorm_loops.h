// The loops of training-mode batch normalisation on an NHWC tensor seen as a
// [rows = N*H*W, C] matrix. Each loop walks a range of rows with the channel axis
// innermost (contiguous, vectorised). Compiled for AVX2+FMA and for plain x86-64;
// the CPU picks the variant at load time. Each comes for float32 tensors and for
// bfloat16 ones (uint16_t bit patterns: read widened, written rounded to nearest even);
// the arithmetic is float32 (double for the moments) in both.
#pragma once

#include <cstdint>

namespace resnet {
namespace bnorm {

// s1[c] += sum(x - shift), s2[c] += sum((x - shift)^2) over rows [r0, r1), in double.
// The shift (a value of x, here the first row) keeps the squares from cancelling
// catastrophically when the mean is large against the spread, but it can lie several
// standard deviations z from the mean, and s2/n - (s1/n)^2 then cancels by 1 + z^2:
// float partial sums of 64 rows left it off by up to 8e-6 (relative) at z = 6 to 8;
// double sums keep it float32-exact.
void shiftedMoments(const float* x, int64_t c, int64_t r0, int64_t r1, const float* shift, double* s1, double* s2);
void shiftedMoments(const uint16_t* x, int64_t c, int64_t r0, int64_t r1, const float* shift, double* s1, double* s2);

// y = (x - center) * scale + shift, then max(0, .) when relu.
// `center` is a value of x near the mean: x - center is exact, so large means lose
// nothing to the cancellation that x * scale - mean * scale would suffer.
void normalize(const float* x, float* y, int64_t c, int64_t r0, int64_t r1, const float* center,
               const float* scale, const float* shift, bool relu);
void normalize(const uint16_t* x, uint16_t* y, int64_t c, int64_t r0, int64_t r1, const float* center,
               const float* scale, const float* shift, bool relu);

// g = relu ? (y > 0 ? dy : 0) : dy; sg[c] += sum(g), sgx[c] += sum(g * (x - mean)).
void gradMoments(const float* dy, const float* y, const float* x, int64_t c, int64_t r0, int64_t r1, const float* mean,
                 double* sg, double* sgx, float* scratch);
void gradMoments(const uint16_t* dy, const uint16_t* y, const uint16_t* x, int64_t c, int64_t r0, int64_t r1,
                 const float* mean, double* sg, double* sgx, float* scratch);

// dx = a * g + b * (x - mean) + k, with g as in gradMoments.
void gradInput(const float* dy, const float* y, const float* x, float* dx, int64_t c, int64_t r0, int64_t r1,
               const float* a, const float* b, const float* mean, const float* k);
void gradInput(const uint16_t* dy, const uint16_t* y, const uint16_t* x, uint16_t* dx, int64_t c, int64_t r0,
               int64_t r1, const float* a, const float* b, const float* mean, const float* k);

}  // namespace bnorm
}  // namespace resnet
