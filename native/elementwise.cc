// Elementwise kernels, reductions and the option-A shortcut. These are memory-bound
// loops: one pass, split across the OpenMP threads when the array is large.
#include <cmath>
#include <cstring>

#include "kernels.h"
#include "runtime.h"

namespace resnet {
namespace {

template <typename Op>
void forEach(size_t n, Op op) {
  parallelFor(static_cast<int64_t>(n), kElementwiseGrain, [&](int64_t begin, int64_t end) {
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) op(i);
  });
}

void expectSame(const Call& call, const F32Arg& a, const F32Arg& b) {
  call.expectLength(b, a.length, "b");
}

}  // namespace

void reluBackwardInto(const float* dy, const float* y, float* dx, size_t n) {
  // Both loads unconditional, so the select vectorises instead of branching per element.
  forEach(n, [=](int64_t i) {
    const float g = dy[i];
    dx[i] = y[i] > 0.0f ? g : 0.0f;
  });
}

// relu(x)
Napi::Value Relu(const Napi::CallbackInfo& info) {
  Call call(info, "relu");
  return call.run([&]() -> Napi::Value {
    const F32Arg x = call.f32(0, "x");
    Napi::Float32Array y = newF32(call.env(), x.length);
    const float* src = x.data;
    float* dst = data(y);
    forEach(x.length, [=](int64_t i) { dst[i] = src[i] > 0.0f ? src[i] : 0.0f; });
    return y;
  });
}

// reluBackward(dy, y)
Napi::Value ReluBackward(const Napi::CallbackInfo& info) {
  Call call(info, "reluBackward");
  return call.run([&]() -> Napi::Value {
    const F32Arg dy = call.f32(0, "dy");
    const F32Arg y = call.f32(1, "y");
    call.expectLength(y, dy.length, "y");
    Napi::Float32Array dx = newF32(call.env(), dy.length);
    reluBackwardInto(dy.data, y.data, data(dx), dy.length);
    return dx;
  });
}

// add(a, b)
Napi::Value Add(const Napi::CallbackInfo& info) {
  Call call(info, "add");
  return call.run([&]() -> Napi::Value {
    const F32Arg a = call.f32(0, "a");
    const F32Arg b = call.f32(1, "b");
    expectSame(call, a, b);
    Napi::Float32Array out = newF32(call.env(), a.length);
    const float* pa = a.data;
    const float* pb = b.data;
    float* po = data(out);
    forEach(a.length, [=](int64_t i) { po[i] = pa[i] + pb[i]; });
    return out;
  });
}

// addRelu(a, b) = relu(a + b)
Napi::Value AddRelu(const Napi::CallbackInfo& info) {
  Call call(info, "addRelu");
  return call.run([&]() -> Napi::Value {
    const F32Arg a = call.f32(0, "a");
    const F32Arg b = call.f32(1, "b");
    expectSame(call, a, b);
    Napi::Float32Array out = newF32(call.env(), a.length);
    const float* pa = a.data;
    const float* pb = b.data;
    float* po = data(out);
    forEach(a.length, [=](int64_t i) {
      const float s = pa[i] + pb[i];
      po[i] = s > 0.0f ? s : 0.0f;
    });
    return out;
  });
}

// addInPlace(a, b): a += b
Napi::Value AddInPlace(const Napi::CallbackInfo& info) {
  Call call(info, "addInPlace");
  return call.run([&]() -> Napi::Value {
    const F32Arg a = call.f32(0, "a");
    const F32Arg b = call.f32(1, "b");
    expectSame(call, a, b);
    float* pa = a.data;
    const float* pb = b.data;
    forEach(a.length, [=](int64_t i) { pa[i] += pb[i]; });
    return call.env().Undefined();
  });
}

// scale(x, s)
Napi::Value Scale(const Napi::CallbackInfo& info) {
  Call call(info, "scale");
  return call.run([&]() -> Napi::Value {
    const F32Arg x = call.f32(0, "x");
    // In double like the reference: rounding s to float first would change results.
    const double s = call.number(1, "s");
    Napi::Float32Array out = newF32(call.env(), x.length);
    const float* px = x.data;
    float* po = data(out);
    forEach(x.length, [=](int64_t i) { po[i] = static_cast<float>(px[i] * s); });
    return out;
  });
}

// fill(n, value): n copies of value (the gradient of sum and mean).
Napi::Value Fill(const Napi::CallbackInfo& info) {
  Call call(info, "fill");
  return call.run([&]() -> Napi::Value {
    const int64_t n = call.integer(0, "n");
    if (n < 0) throw ArgumentError("n must be >= 0");
    const float v = static_cast<float>(call.number(1, "value"));
    Napi::Float32Array y = newF32(call.env(), static_cast<size_t>(n));
    float* py = data(y);
    forEach(static_cast<size_t>(n), [=](int64_t i) { py[i] = v; });
    return y;
  });
}

// sum(x): accumulated in double, like the reference's JS numbers.
Napi::Value Sum(const Napi::CallbackInfo& info) {
  Call call(info, "sum");
  return call.run([&]() -> Napi::Value {
    const F32Arg x = call.f32(0, "x");
    const float* px = x.data;
    const int64_t n = static_cast<int64_t>(x.length);
    double total = 0.0;
#pragma omp parallel for reduction(+ : total) if (n > kElementwiseGrain)
    for (int64_t i = 0; i < n; ++i) total += px[i];
    return Napi::Number::New(call.env(), total);
  });
}

// padChannelsSubsample(x, xShape, stride, outC, padFront)
Napi::Value PadChannelsSubsample(const Napi::CallbackInfo& info) {
  Call call(info, "padChannelsSubsample");
  return call.run([&]() -> Napi::Value {
    const F32Arg x = call.f32(0, "x");
    const dims s = call.shape(1, "xShape", 4);
    const int64_t stride = call.integer(2, "stride");
    const int64_t outC = call.integer(3, "outC");
    const int64_t front = call.integer(4, "padFront");
    call.describe("x " + shapeText(s) + ", stride " + std::to_string(stride) + ", outC " + std::to_string(outC) +
                  ", padFront " + std::to_string(front));
    const int64_t n = s[0], h = s[1], w = s[2], c = s[3];
    if (stride < 1) throw ArgumentError("stride must be >= 1");
    if (front < 0 || front + c > outC) throw ArgumentError("channels do not fit in outC");
    call.expectLength(x, static_cast<size_t>(n * h * w * c), "x");
    const int64_t oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride;
    Napi::Float32Array out = newF32(call.env(), static_cast<size_t>(n * oh * ow * outC));
    const float* px = x.data;
    float* po = data(out);
    parallelFor(n * oh, 64, [=](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t b = r / oh, i = r % oh;
        for (int64_t j = 0; j < ow; ++j) {
          float* dst = po + (r * ow + j) * outC;
          const float* src = px + ((b * h + i * stride) * w + j * stride) * c;
          std::memset(dst, 0, sizeof(float) * front);
          std::memcpy(dst + front, src, sizeof(float) * c);
          std::memset(dst + front + c, 0, sizeof(float) * (outC - front - c));
        }
      }
    });
    return out;
  });
}

// padChannelsSubsampleBackward(dy, xShape, stride, outC, padFront)
Napi::Value PadChannelsSubsampleBackward(const Napi::CallbackInfo& info) {
  Call call(info, "padChannelsSubsampleBackward");
  return call.run([&]() -> Napi::Value {
    const F32Arg dy = call.f32(0, "dy");
    const dims s = call.shape(1, "xShape", 4);
    const int64_t stride = call.integer(2, "stride");
    const int64_t outC = call.integer(3, "outC");
    const int64_t front = call.integer(4, "padFront");
    call.describe("x " + shapeText(s) + ", stride " + std::to_string(stride) + ", outC " + std::to_string(outC) +
                  ", padFront " + std::to_string(front));
    const int64_t n = s[0], h = s[1], w = s[2], c = s[3];
    if (stride < 1) throw ArgumentError("stride must be >= 1");
    if (front < 0 || front + c > outC) throw ArgumentError("channels do not fit in outC");
    const int64_t oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride;
    call.expectLength(dy, static_cast<size_t>(n * oh * ow * outC), "dy");
    Napi::Float32Array out = newF32(call.env(), static_cast<size_t>(n * h * w * c));
    const float* pdy = dy.data;
    float* pdx = data(out);
    parallelFor(n * h, 64, [=](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t b = r / h, y = r % h;
        float* row = pdx + r * w * c;
        if (y % stride != 0) {
          std::memset(row, 0, sizeof(float) * w * c);
          continue;
        }
        for (int64_t x = 0; x < w; ++x) {
          float* dst = row + x * c;
          if (x % stride != 0) {
            std::memset(dst, 0, sizeof(float) * c);
          } else {
            const float* src = pdy + ((b * oh + y / stride) * ow + x / stride) * outC + front;
            std::memcpy(dst, src, sizeof(float) * c);
          }
        }
      }
    });
    return out;
  });
}

}  // namespace resnet
