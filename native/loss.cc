// Log-softmax and softmax cross-entropy over rows of a [rows, cols] matrix. These
// are tiny in a ResNet (batch x classes), so they are written for accuracy: double
// accumulators and the max-shift before exp.
#include <cmath>
#include <vector>

#include "kernels.h"
#include "runtime.h"

namespace resnet {
namespace {

struct RowStats {
  double max;
  double logSumExp;  // log(sum(exp(x - max)))
};

RowStats rowStats(const float* row, int64_t cols) {
  double mx = -INFINITY;
  for (int64_t j = 0; j < cols; ++j) mx = row[j] > mx ? row[j] : mx;
  double s = 0.0;
  for (int64_t j = 0; j < cols; ++j) s += std::exp(static_cast<double>(row[j]) - mx);
  return RowStats{mx, std::log(s)};
}

void checkMatrix(Call& call, const F32Arg& x, int64_t rows, int64_t cols, const char* name) {
  call.describe("rows " + std::to_string(rows) + ", cols " + std::to_string(cols));
  if (rows < 0 || cols < 1) throw ArgumentError("rows must be >= 0 and cols >= 1");
  call.expectLength(x, static_cast<size_t>(rows * cols), name);
}

}  // namespace

// logSoftmax(x, rows, cols)
Napi::Value LogSoftmax(const Napi::CallbackInfo& info) {
  Call call(info, "logSoftmax");
  return call.run([&]() -> Napi::Value {
    const F32Arg x = call.f32(0, "x");
    const int64_t rows = call.integer(1, "rows");
    const int64_t cols = call.integer(2, "cols");
    checkMatrix(call, x, rows, cols, "x");
    Napi::Float32Array out = newF32(call.env(), x.length);
    float* po = data(out);
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = x.data + r * cols;
      const RowStats st = rowStats(row, cols);
      for (int64_t j = 0; j < cols; ++j) po[r * cols + j] = static_cast<float>(row[j] - st.max - st.logSumExp);
    }
    return out;
  });
}

// logSoftmaxBackward(dy, y, rows, cols): dx = dy - exp(y) * sum(dy) per row.
Napi::Value LogSoftmaxBackward(const Napi::CallbackInfo& info) {
  Call call(info, "logSoftmaxBackward");
  return call.run([&]() -> Napi::Value {
    const F32Arg dy = call.f32(0, "dy");
    const F32Arg y = call.f32(1, "y");
    const int64_t rows = call.integer(2, "rows");
    const int64_t cols = call.integer(3, "cols");
    checkMatrix(call, dy, rows, cols, "dy");
    call.expectLength(y, dy.length, "y");
    Napi::Float32Array out = newF32(call.env(), dy.length);
    float* po = data(out);
    for (int64_t r = 0; r < rows; ++r) {
      const float* g = dy.data + r * cols;
      const float* p = y.data + r * cols;
      double s = 0.0;
      for (int64_t j = 0; j < cols; ++j) s += g[j];
      for (int64_t j = 0; j < cols; ++j) po[r * cols + j] = static_cast<float>(g[j] - std::exp(static_cast<double>(p[j])) * s);
    }
    return out;
  });
}

// softmaxCrossEntropy(logits, n, c, labels, labelSmoothing) -> { loss, dlogits }
// With smoothing e the target is (1 - e) * onehot + e / C (PyTorch's CrossEntropyLoss).
Napi::Value SoftmaxCrossEntropy(const Napi::CallbackInfo& info) {
  Call call(info, "softmaxCrossEntropy");
  return call.run([&]() -> Napi::Value {
    const F32Arg logits = call.f32(0, "logits");
    const int64_t n = call.integer(1, "n");
    const int64_t c = call.integer(2, "c");
    const I32Arg labels = call.i32(3, "labels");
    const double eps = call.number(4, "labelSmoothing");
    checkMatrix(call, logits, n, c, "logits");
    call.expectLength(labels, static_cast<size_t>(n), "labels");
    if (!(eps >= 0.0 && eps <= 1.0)) throw ArgumentError("labelSmoothing must lie in [0, 1]");
    if (n < 1) throw ArgumentError("the batch is empty");
    for (int64_t i = 0; i < n; ++i) {
      if (labels.data[i] < 0 || labels.data[i] >= c) {
        throw ArgumentError("label " + std::to_string(labels.data[i]) + " at row " + std::to_string(i) +
                            " is outside [0, " + std::to_string(c) + ")");
      }
    }
    Napi::Float32Array grad = newF32(call.env(), logits.length);
    float* pg = data(grad);
    const double uniform = eps / static_cast<double>(c);
    const double invN = 1.0 / static_cast<double>(n);
    double total = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const float* row = logits.data + i * c;
      const RowStats st = rowStats(row, c);
      const int64_t label = labels.data[i];
      double sumLogP = 0.0;
      for (int64_t j = 0; j < c; ++j) {
        const double logp = row[j] - st.max - st.logSumExp;
        sumLogP += logp;
        const double target = (j == label ? 1.0 - eps : 0.0) + uniform;
        pg[i * c + j] = static_cast<float>((std::exp(logp) - target) * invN);
      }
      const double logpLabel = row[label] - st.max - st.logSumExp;
      total += -(1.0 - eps) * logpLabel - uniform * sumLogP;
    }
    Napi::Object out = Napi::Object::New(call.env());
    out.Set("loss", Napi::Number::New(call.env(), total * invN));
    out.Set("dlogits", grad);
    return out;
  });
}

}  // namespace resnet
