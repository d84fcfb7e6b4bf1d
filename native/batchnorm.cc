// Batch normalisation over N, H, W of an NHWC tensor, with optional fused ReLU.
//
// Training forward and backward are our own loops (bnorm_loops.cc): the batch
// statistics take one pass over x instead of oneDNN's two, and the backward pass
// applies the fused ReLU's mask while it reads the gradient instead of in a pass of
// its own. Inference (one read, one write) runs oneDNN's kernel. The training kernels
// also come for bfloat16 tensors (batchNormTrainingBf16, batchNormBackwardBf16: half the
// bytes through memory, which is what these loops are bound by); the statistics, gamma,
// beta and their gradients stay float32.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "bf16.h"
#include "bnorm_loops.h"
#include "kernels.h"
#include "runtime.h"

namespace resnet {
namespace {

using dnnl::memory;
using dnnl::normalization_flags;
using dnnl::prop_kind;

struct BnGeometry {
  int64_t n, h, w, c;
  float eps;
  memory::desc data() const { return memory::desc({n, c, h, w}, dt::f32, tag::nhwc); }
  memory::desc channels() const { return memory::desc({c}, dt::f32, tag::x); }
  size_t size() const { return static_cast<size_t>(n * h * w * c); }
};

BnGeometry geometry(Call& call, size_t shapeArg, double eps) {
  const dims s = call.shape(shapeArg, "xShape", 4);
  call.describe("x " + shapeText(s) + ", eps " + std::to_string(eps));
  if (!(eps > 0)) throw ArgumentError("eps must be positive");
  return BnGeometry{s[0], s[1], s[2], s[3], static_cast<float>(eps)};
}

std::string geometryKey(const BnGeometry& g, int64_t variant) {
  int32_t epsBits;
  std::memcpy(&epsBits, &g.eps, sizeof epsBits);
  return cacheKey({g.n, g.h, g.w, g.c, epsBits, variant});
}

memory unbound(const memory::desc& md) { return memory(md, cpuEngine(), DNNL_MEMORY_NONE); }

const normalization_flags kScaleShift = normalization_flags::use_scale | normalization_flags::use_shift;

// Rows per thread below which a second thread costs more than it saves.
constexpr int64_t kRowsPerThread = 256;

int threadsFor(int64_t rows) {
  const int64_t useful = std::max<int64_t>(1, rows / kRowsPerThread);
  return static_cast<int>(std::min<int64_t>(omp_get_max_threads(), useful));
}

// Runs body(r0, r1, thread) over contiguous row ranges, one per thread; returns the
// number of threads that ran (per-thread partials beyond it stay untouched).
template <typename Body>
void forRowRanges(int64_t rows, int threads, Body body) {
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    const int n = omp_get_num_threads();
    const int64_t chunk = (rows + n - 1) / n;
    const int64_t r0 = std::min(rows, t * chunk);
    const int64_t r1 = std::min(rows, r0 + chunk);
    if (r0 < r1) body(r0, r1, t);
  }
}

struct InferencePlan {
  dnnl::batch_normalization_forward prim;
  memory src, dst, scale, shift, mean, variance, scratch;
  std::unordered_map<int, memory> args;
};

InferencePlan& inferencePlan(const BnGeometry& g, bool relu) {
  thread_local std::unordered_map<std::string, InferencePlan> cache;
  const std::string key = geometryKey(g, relu ? 1 : 0);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;

  normalization_flags flags = kScaleShift | normalization_flags::use_global_stats;
  if (relu) flags = flags | normalization_flags::fuse_norm_relu;
  dnnl::batch_normalization_forward::desc d(prop_kind::forward_inference, g.data(), g.eps, flags);
  dnnl::batch_normalization_forward::primitive_desc pd(d, scratchpadAttr(), cpuEngine());
  InferencePlan p;
  p.prim = dnnl::batch_normalization_forward(pd);
  p.src = unbound(g.data());
  p.dst = unbound(g.data());
  p.scale = unbound(g.channels());
  p.shift = unbound(g.channels());
  p.mean = unbound(g.channels());
  p.variance = unbound(g.channels());
  p.scratch = unbound(pd.scratchpad_desc());
  p.args = {{DNNL_ARG_SRC, p.src},         {DNNL_ARG_DST, p.dst},
            {DNNL_ARG_SCALE, p.scale},     {DNNL_ARG_SHIFT, p.shift},
            {DNNL_ARG_MEAN, p.mean},       {DNNL_ARG_VARIANCE, p.variance},
            {DNNL_ARG_SCRATCHPAD, p.scratch}};
  return cache.emplace(key, std::move(p)).first->second;
}

}  // namespace

namespace {

// Training-mode forward on rows of float32 or bfloat16 values: the batch statistics
// (into mean, variance) and y, in x's type.
template <typename T>
void trainingForward(const T* x, T* y, const BnGeometry& g, const float* gamma, const float* beta, bool relu,
                     float* mean, float* variance) {
  const int64_t c = g.c, rows = g.n * g.h * g.w;
  const int threads = threadsFor(rows);
  std::vector<double> acc(static_cast<size_t>(threads * 2 * c), 0.0);
  std::vector<float> shift(static_cast<size_t>(c));
  for (int64_t k = 0; k < c; ++k) shift[k] = widen(x[k]);
  forRowRanges(rows, threads, [&](int64_t r0, int64_t r1, int t) {
    double* a = acc.data() + t * 2 * c;
    bnorm::shiftedMoments(x, c, r0, r1, shift.data(), a, a + c);
  });
  std::vector<float> scale(static_cast<size_t>(c)), offset(static_cast<size_t>(c));
  for (int64_t k = 0; k < c; ++k) {
    double s1 = 0.0, s2 = 0.0;
    for (int t = 0; t < threads; ++t) {
      s1 += acc[t * 2 * c + k];
      s2 += acc[t * 2 * c + c + k];
    }
    const double d = s1 / static_cast<double>(rows);
    const double m = shift[k] + d;
    const double v = std::max(0.0, s2 / static_cast<double>(rows) - d * d);
    const double sc = gamma[k] / std::sqrt(v + static_cast<double>(g.eps));
    mean[k] = static_cast<float>(m);
    variance[k] = static_cast<float>(v);
    scale[k] = static_cast<float>(sc);
    offset[k] = static_cast<float>(beta[k] - d * sc);
  }
  forRowRanges(rows, threads, [&](int64_t r0, int64_t r1, int) {
    bnorm::normalize(x, y, c, r0, r1, shift.data(), scale.data(), offset.data(), relu);
  });
}

// batchNormTraining / batchNormTrainingBf16 (x, xShape, gamma, beta, eps, relu) -> { y, mean, variance },
// y in x's type (Float32Array, or Uint16Array of bfloat16 values).
template <typename T>
Napi::Value batchNormTrainingCall(const Napi::CallbackInfo& info, const char* kernel) {
  Call call(info, kernel);
  return call.run([&]() -> Napi::Value {
    constexpr bool bf16 = std::is_same<T, uint16_t>::value;
    const F32Arg gamma = call.f32(2, "gamma");
    const F32Arg beta = call.f32(3, "beta");
    const bool relu = call.boolean(5, "relu");
    const BnGeometry g = geometry(call, 1, call.number(4, "eps"));
    const size_t c = static_cast<size_t>(g.c);
    call.expectLength(gamma, c, "gamma");
    call.expectLength(beta, c, "beta");
    Napi::Env env = call.env();
    Napi::Float32Array mean = newF32(env, c);
    Napi::Float32Array variance = newF32(env, c);
    Napi::Object out = Napi::Object::New(env);
    if constexpr (bf16) {
      const U16Arg x = call.u16(0, "x");
      call.expectLength(x, g.size(), "x");
      Napi::Uint16Array y = newU16(env, g.size());
      trainingForward(x.data, data(y), g, gamma.data, beta.data, relu, data(mean), data(variance));
      out.Set("y", y);
    } else {
      const F32Arg x = call.f32(0, "x");
      call.expectLength(x, g.size(), "x");
      Napi::Float32Array y = newF32(env, g.size());
      trainingForward(x.data, data(y), g, gamma.data, beta.data, relu, data(mean), data(variance));
      out.Set("y", y);
    }
    out.Set("mean", mean);
    out.Set("variance", variance);
    return out;
  });
}

}  // namespace

Napi::Value BatchNormTraining(const Napi::CallbackInfo& info) {
  return batchNormTrainingCall<float>(info, "batchNormTraining");
}

Napi::Value BatchNormTrainingBf16(const Napi::CallbackInfo& info) {
  return batchNormTrainingCall<uint16_t>(info, "batchNormTrainingBf16");
}

// batchNormInference(x, xShape, gamma, beta, mean, variance, eps, relu) -> y
Napi::Value BatchNormInference(const Napi::CallbackInfo& info) {
  Call call(info, "batchNormInference");
  return call.run([&]() -> Napi::Value {
    const F32Arg x = call.f32(0, "x");
    const F32Arg gamma = call.f32(2, "gamma");
    const F32Arg beta = call.f32(3, "beta");
    const F32Arg mean = call.f32(4, "mean");
    const F32Arg variance = call.f32(5, "variance");
    const bool relu = call.boolean(7, "relu");
    const BnGeometry g = geometry(call, 1, call.number(6, "eps"));
    const size_t c = static_cast<size_t>(g.c);
    call.expectLength(x, g.size(), "x");
    call.expectLength(gamma, c, "gamma");
    call.expectLength(beta, c, "beta");
    call.expectLength(mean, c, "mean");
    call.expectLength(variance, c, "variance");

    InferencePlan& p = inferencePlan(g, relu);
    Napi::Float32Array y = newF32(call.env(), g.size());
    p.src.set_data_handle(x.data);
    p.dst.set_data_handle(data(y));
    p.scale.set_data_handle(gamma.data);
    p.shift.set_data_handle(beta.data);
    p.mean.set_data_handle(mean.data);
    p.variance.set_data_handle(variance.data);
    bindScratchpad(p.scratch);
    p.prim.execute(cpuStream(), p.args);
    cpuStream().wait();
    return y;
  });
}

namespace {
// { dx, dgamma, dbeta }, the result of the backward kernels.
Napi::Object gradsObject(Napi::Env env, Napi::Value dx, Napi::Value dgamma, Napi::Value dbeta) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("dx", dx);
  out.Set("dgamma", dgamma);
  out.Set("dbeta", dbeta);
  return out;
}
}  // namespace

// The arguments batchNormBackward and batchNormInferenceBackward share:
// (dy, x, xShape, gamma, mean, variance, eps, y | null), checked.
struct BnBackwardArgs {
  F32Arg dy, x, gamma, mean, variance, y;
  BnGeometry g;
};

BnBackwardArgs bnBackwardArgs(Call& call) {
  BnBackwardArgs b{call.f32(0, "dy"), call.f32(1, "x"), call.f32(3, "gamma"), call.f32(4, "mean"), call.f32(5, "variance"),
                   call.f32OrNull(7, "y"), geometry(call, 2, call.number(6, "eps"))};
  const size_t c = static_cast<size_t>(b.g.c);
  call.expectLength(b.dy, b.g.size(), "dy");
  call.expectLength(b.x, b.g.size(), "x");
  call.expectLength(b.gamma, c, "gamma");
  call.expectLength(b.mean, c, "mean");
  call.expectLength(b.variance, c, "variance");
  if (b.y.present()) call.expectLength(b.y, b.g.size(), "y");
  return b;
}

namespace {

// The gradient of training-mode batch norm on rows of float32 or bfloat16 values; with y
// (the output of a BN fused with ReLU) the gradient is first masked by y > 0.
// dx = gamma * invStd * (g - mean(g) - xhat * mean(g * xhat)).
template <typename T>
void trainingBackward(const T* dy, const T* x, const T* y, T* dx, const BnGeometry& g, const float* gamma,
                      const float* mean, const float* variance, float* dgamma, float* dbeta) {
  const int64_t c = g.c, rows = g.n * g.h * g.w;
  const int threads = threadsFor(rows);
  std::vector<double> acc(static_cast<size_t>(threads * 2 * c), 0.0);
  std::vector<float> scratch(static_cast<size_t>(threads * 2 * c));
  forRowRanges(rows, threads, [&](int64_t r0, int64_t r1, int t) {
    double* a = acc.data() + t * 2 * c;
    bnorm::gradMoments(dy, y, x, c, r0, r1, mean, a, a + c, scratch.data() + t * 2 * c);
  });
  std::vector<float> ca(static_cast<size_t>(c)), cb(static_cast<size_t>(c)), ck(static_cast<size_t>(c));
  const double invRows = 1.0 / static_cast<double>(rows);
  for (int64_t k = 0; k < c; ++k) {
    double sg = 0.0, sgx = 0.0;
    for (int t = 0; t < threads; ++t) {
      sg += acc[t * 2 * c + k];
      sgx += acc[t * 2 * c + c + k];
    }
    const double invStd = 1.0 / std::sqrt(static_cast<double>(variance[k]) + static_cast<double>(g.eps));
    const double sgxhat = sgx * invStd;
    const double a = gamma[k] * invStd;
    dgamma[k] = static_cast<float>(sgxhat);
    dbeta[k] = static_cast<float>(sg);
    ca[k] = static_cast<float>(a);
    cb[k] = static_cast<float>(-a * invStd * sgxhat * invRows);
    ck[k] = static_cast<float>(-a * sg * invRows);
  }
  forRowRanges(rows, threads, [&](int64_t r0, int64_t r1, int) {
    bnorm::gradInput(dy, y, x, dx, c, r0, r1, ca.data(), cb.data(), mean, ck.data());
  });
}

}  // namespace

// batchNormBackward(dy, x, xShape, gamma, mean, variance, eps, y | null) -> { dx, dgamma, dbeta }
Napi::Value BatchNormBackward(const Napi::CallbackInfo& info) {
  Call call(info, "batchNormBackward");
  return call.run([&]() -> Napi::Value {
    const BnBackwardArgs b = bnBackwardArgs(call);
    Napi::Env env = call.env();
    const size_t c = static_cast<size_t>(b.g.c);
    Napi::Float32Array dx = newF32(env, b.g.size());
    Napi::Float32Array dgamma = newF32(env, c);
    Napi::Float32Array dbeta = newF32(env, c);
    trainingBackward(b.dy.data, b.x.data, b.y.data, data(dx), b.g, b.gamma.data, b.mean.data, b.variance.data,
                     data(dgamma), data(dbeta));
    return gradsObject(env, dx, dgamma, dbeta);
  });
}

// batchNormBackwardBf16(dy, x, xShape, gamma, mean, variance, eps, y | null) -> { dx, dgamma, dbeta }:
// batchNormBackward with dy, x, y and dx bfloat16 (Uint16Array).
Napi::Value BatchNormBackwardBf16(const Napi::CallbackInfo& info) {
  Call call(info, "batchNormBackwardBf16");
  return call.run([&]() -> Napi::Value {
    const U16Arg dy = call.u16(0, "dy");
    const U16Arg x = call.u16(1, "x");
    const F32Arg gamma = call.f32(3, "gamma");
    const F32Arg mean = call.f32(4, "mean");
    const F32Arg variance = call.f32(5, "variance");
    const U16Arg y = call.u16OrNull(7, "y");
    const BnGeometry g = geometry(call, 2, call.number(6, "eps"));
    const size_t c = static_cast<size_t>(g.c);
    call.expectLength(dy, g.size(), "dy");
    call.expectLength(x, g.size(), "x");
    call.expectLength(gamma, c, "gamma");
    call.expectLength(mean, c, "mean");
    call.expectLength(variance, c, "variance");
    if (y.present()) call.expectLength(y, g.size(), "y");
    Napi::Env env = call.env();
    Napi::Uint16Array dx = newU16(env, g.size());
    Napi::Float32Array dgamma = newF32(env, c);
    Napi::Float32Array dbeta = newF32(env, c);
    trainingBackward(dy.data, x.data, y.data, data(dx), g, gamma.data, mean.data, variance.data, data(dgamma),
                     data(dbeta));
    return gradsObject(env, dx, dgamma, dbeta);
  });
}

// batchNormInferenceBackward(dy, x, xShape, gamma, mean, variance, eps, y | null) -> { dx, dgamma, dbeta }
// The gradient of y = (x - mean) * invStd * gamma + beta with constant statistics; with
// y (the output of a BN fused with ReLU) the gradient is first masked by y > 0.
Napi::Value BatchNormInferenceBackward(const Napi::CallbackInfo& info) {
  Call call(info, "batchNormInferenceBackward");
  return call.run([&]() -> Napi::Value {
    const BnBackwardArgs b = bnBackwardArgs(call);
    const F32Arg &dy = b.dy, &x = b.x, &gamma = b.gamma, &mean = b.mean, &variance = b.variance, &y = b.y;
    const BnGeometry& g = b.g;
    const int64_t c = g.c, rows = g.n * g.h * g.w;
    Napi::Env env = call.env();
    Napi::Float32Array dx = newF32(env, g.size());
    Napi::Float32Array dgamma = newF32(env, static_cast<size_t>(c));
    Napi::Float32Array dbeta = newF32(env, static_cast<size_t>(c));
    std::vector<double> invStd(static_cast<size_t>(c));
    std::vector<float> a(static_cast<size_t>(c));
    for (int64_t k = 0; k < c; ++k) {
      invStd[k] = 1.0 / std::sqrt(static_cast<double>(variance.data[k]) + static_cast<double>(g.eps));
      a[k] = static_cast<float>(gamma.data[k] * invStd[k]);
    }
    const int threads = threadsFor(rows);
    std::vector<double> acc(static_cast<size_t>(threads * 2 * c), 0.0);
    float* pdx = data(dx);
    forRowRanges(rows, threads, [&](int64_t r0, int64_t r1, int t) {
      double* sg = acc.data() + t * 2 * c;
      double* sgx = sg + c;
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t base = r * c;
        for (int64_t k = 0; k < c; ++k) {
          const float gv = (y.data == nullptr || y.data[base + k] > 0.0f) ? dy.data[base + k] : 0.0f;
          pdx[base + k] = gv * a[k];
          sg[k] += gv;
          sgx[k] += static_cast<double>(gv) * (static_cast<double>(x.data[base + k]) - mean.data[k]);
        }
      }
    });
    float* pdg = data(dgamma);
    float* pdb = data(dbeta);
    for (int64_t k = 0; k < c; ++k) {
      double sg = 0.0, sgx = 0.0;
      for (int t = 0; t < threads; ++t) {
        sg += acc[t * 2 * c + k];
        sgx += acc[t * 2 * c + c + k];
      }
      pdg[k] = static_cast<float>(sgx * invStd[k]);
      pdb[k] = static_cast<float>(sg);
    }
    return gradsObject(env, dx, dgamma, dbeta);
  });
}

// batchNormRunningStatsInPlace(runningMean, runningVar, mean, variance, momentum, count)
// running = (1 - momentum) * running + momentum * batch, with the variance unbiased by
// count / (count - 1) (count: values per channel in the batch), as PyTorch.
Napi::Value BatchNormRunningStatsInPlace(const Napi::CallbackInfo& info) {
  Call call(info, "batchNormRunningStatsInPlace");
  return call.run([&]() -> Napi::Value {
    const F32Arg rm = call.f32(0, "runningMean");
    const F32Arg rv = call.f32(1, "runningVar");
    const F32Arg mean = call.f32(2, "mean");
    const F32Arg variance = call.f32(3, "variance");
    const double m = call.number(4, "momentum");
    const int64_t count = call.integer(5, "count");
    call.describe("channels " + std::to_string(rm.length) + ", count " + std::to_string(count));
    if (count < 2) throw ArgumentError("count must be >= 2");
    call.expectLength(rv, rm.length, "runningVar");
    call.expectLength(mean, rm.length, "mean");
    call.expectLength(variance, rm.length, "variance");
    const double unbias = static_cast<double>(count) / static_cast<double>(count - 1);
    for (size_t k = 0; k < rm.length; ++k) {
      rm.data[k] = static_cast<float>((1.0 - m) * rm.data[k] + m * mean.data[k]);
      rv.data[k] = static_cast<float>((1.0 - m) * rv.data[k] + m * variance.data[k] * unbias);
    }
    return call.env().Undefined();
  });
}

}  // namespace resnet
