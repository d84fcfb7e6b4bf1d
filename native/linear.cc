// Matrix product (the fully connected layer) and its bias gradient.
#include <vector>

#include "kernels.h"
#include "runtime.h"

namespace resnet {

// matmul(a, b, m, n, k, transA, transB, bias | null) -> C [m, n]
Napi::Value Matmul(const Napi::CallbackInfo& info) {
  Call call(info, "matmul");
  return call.run([&]() -> Napi::Value {
    const F32Arg a = call.f32(0, "a");
    const F32Arg b = call.f32(1, "b");
    const int64_t m = call.integer(2, "m");
    const int64_t n = call.integer(3, "n");
    const int64_t k = call.integer(4, "k");
    const bool transA = call.boolean(5, "transA");
    const bool transB = call.boolean(6, "transB");
    const F32Arg bias = call.f32OrNull(7, "bias");
    call.describe("m " + std::to_string(m) + ", n " + std::to_string(n) + ", k " + std::to_string(k) +
                  (transA ? ", A transposed" : "") + (transB ? ", B transposed" : ""));
    if (m < 0 || n < 0 || k < 0) throw ArgumentError("sizes must be >= 0");
    call.expectLength(a, static_cast<size_t>(m * k), "a");
    call.expectLength(b, static_cast<size_t>(k * n), "b");
    if (bias.present()) call.expectLength(bias, static_cast<size_t>(n), "bias");

    Napi::Float32Array out = newF32(call.env(), static_cast<size_t>(m * n));
    float* c = data(out);
    // Start from the broadcast bias (beta = 1) or from zero (beta = 0 ignores C).
    float beta = 0.0f;
    if (bias.present()) {
      for (int64_t r = 0; r < m; ++r) std::copy(bias.data, bias.data + n, c + r * n);
      beta = 1.0f;
    }
    if (m == 0 || n == 0) return out;
    if (k == 0) {
      if (!bias.present()) std::fill(c, c + m * n, 0.0f);
      return out;
    }
    // dnnl_sgemm is row-major.
    const dnnl::status st = dnnl::sgemm(transA ? 'T' : 'N', transB ? 'T' : 'N', m, n, k, 1.0f, a.data,
                                        transA ? m : k, b.data, transB ? k : n, beta, c, n);
    if (st != dnnl::status::success) throw std::runtime_error("dnnl_sgemm failed");
    return out;
  });
}

// sumRows(x, rows, cols) -> [cols]: column sums, accumulated in double.
Napi::Value SumRows(const Napi::CallbackInfo& info) {
  Call call(info, "sumRows");
  return call.run([&]() -> Napi::Value {
    const F32Arg x = call.f32(0, "x");
    const int64_t rows = call.integer(1, "rows");
    const int64_t cols = call.integer(2, "cols");
    call.describe("rows " + std::to_string(rows) + ", cols " + std::to_string(cols));
    if (rows < 0 || cols < 0) throw ArgumentError("sizes must be >= 0");
    call.expectLength(x, static_cast<size_t>(rows * cols), "x");
    std::vector<double> acc(static_cast<size_t>(cols), 0.0);
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = x.data + r * cols;
      for (int64_t j = 0; j < cols; ++j) acc[j] += row[j];
    }
    Napi::Float32Array out = newF32(call.env(), static_cast<size_t>(cols));
    float* po = data(out);
    for (int64_t j = 0; j < cols; ++j) po[j] = static_cast<float>(acc[j]);
    return out;
  });
}

}  // namespace resnet
