// Batch normalisation over N, H, W of an NHWC tensor, with optional fused ReLU.
#include <cstring>
#include <unordered_map>
#include <vector>

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

struct ForwardPlan {
  dnnl::batch_normalization_forward prim;
  memory src, dst, scale, shift, mean, variance, workspace, scratch;
  std::unordered_map<int, memory> args;
};

// variant: bit 0 = fused ReLU, bit 1 = inference with given statistics.
ForwardPlan& forwardPlan(const BnGeometry& g, bool relu, bool inference) {
  static std::unordered_map<std::string, ForwardPlan> cache;
  const std::string key = geometryKey(g, (relu ? 1 : 0) | (inference ? 2 : 0));
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;

  normalization_flags flags = kScaleShift;
  if (relu) flags = flags | normalization_flags::fuse_norm_relu;
  if (inference) flags = flags | normalization_flags::use_global_stats;
  dnnl::batch_normalization_forward::desc d(inference ? prop_kind::forward_inference : prop_kind::forward_training,
                                            g.data(), g.eps, flags);
  dnnl::batch_normalization_forward::primitive_desc pd(d, scratchpadAttr(), cpuEngine());
  ForwardPlan p;
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
  // Training with fused ReLU records the ReLU mask; the backward kernel here
  // re-derives it from y instead, so the workspace is a per-plan sink.
  if (relu && !inference) {
    p.workspace = memory(pd.workspace_desc(), cpuEngine());
    p.args[DNNL_ARG_WORKSPACE] = p.workspace;
  }
  return cache.emplace(key, std::move(p)).first->second;
}

struct BackwardPlan {
  dnnl::batch_normalization_backward prim;
  memory src, diffDst, diffSrc, scale, shift, mean, variance, diffScale, diffShift, scratch;
  std::vector<float> unusedShift;
  std::unordered_map<int, memory> args;
};

BackwardPlan& backwardPlan(const BnGeometry& g) {
  static std::unordered_map<std::string, BackwardPlan> cache;
  const std::string key = geometryKey(g, 0);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;

  dnnl::batch_normalization_forward::desc fd(prop_kind::forward_training, g.data(), g.eps, kScaleShift);
  dnnl::batch_normalization_forward::primitive_desc hint(fd, scratchpadAttr(), cpuEngine());
  dnnl::batch_normalization_backward::desc d(prop_kind::backward, g.data(), g.data(), g.eps, kScaleShift);
  dnnl::batch_normalization_backward::primitive_desc pd(d, scratchpadAttr(), cpuEngine(), hint);

  auto inserted = cache.emplace(key, BackwardPlan{});
  BackwardPlan& p = inserted.first->second;
  p.prim = dnnl::batch_normalization_backward(pd);
  p.src = unbound(g.data());
  p.diffDst = unbound(g.data());
  p.diffSrc = unbound(g.data());
  p.scale = unbound(g.channels());
  // The gradients do not depend on beta, but oneDNN refuses to execute
  // (with no reason given) unless a shift buffer is bound.
  p.unusedShift.assign(static_cast<size_t>(g.c), 0.0f);
  p.shift = memory(g.channels(), cpuEngine(), p.unusedShift.data());
  p.mean = unbound(g.channels());
  p.variance = unbound(g.channels());
  p.diffScale = unbound(g.channels());
  p.diffShift = unbound(g.channels());
  p.scratch = unbound(pd.scratchpad_desc());
  p.args = {{DNNL_ARG_SRC, p.src},
            {DNNL_ARG_DIFF_DST, p.diffDst},
            {DNNL_ARG_DIFF_SRC, p.diffSrc},
            {DNNL_ARG_SCALE, p.scale},
            {DNNL_ARG_SHIFT, p.shift},
            {DNNL_ARG_MEAN, p.mean},
            {DNNL_ARG_VARIANCE, p.variance},
            {DNNL_ARG_DIFF_SCALE, p.diffScale},
            {DNNL_ARG_DIFF_SHIFT, p.diffShift},
            {DNNL_ARG_SCRATCHPAD, p.scratch}};
  return p;
}

}  // namespace

// batchNormTraining(x, xShape, gamma, beta, eps, relu) -> { y, mean, variance }
Napi::Value BatchNormTraining(const Napi::CallbackInfo& info) {
  Call call(info, "batchNormTraining");
  return call.run([&]() -> Napi::Value {
    const F32Arg x = call.f32(0, "x");
    const F32Arg gamma = call.f32(2, "gamma");
    const F32Arg beta = call.f32(3, "beta");
    const bool relu = call.boolean(5, "relu");
    const BnGeometry g = geometry(call, 1, call.number(4, "eps"));
    call.expectLength(x, g.size(), "x");
    call.expectLength(gamma, static_cast<size_t>(g.c), "gamma");
    call.expectLength(beta, static_cast<size_t>(g.c), "beta");

    ForwardPlan& p = forwardPlan(g, relu, false);
    Napi::Env env = call.env();
    Napi::Float32Array y = newF32(env, g.size());
    Napi::Float32Array mean = newF32(env, static_cast<size_t>(g.c));
    Napi::Float32Array variance = newF32(env, static_cast<size_t>(g.c));
    p.src.set_data_handle(x.data);
    p.dst.set_data_handle(data(y));
    p.scale.set_data_handle(gamma.data);
    p.shift.set_data_handle(beta.data);
    p.mean.set_data_handle(data(mean));
    p.variance.set_data_handle(data(variance));
    bindScratchpad(p.scratch);
    p.prim.execute(cpuStream(), p.args);
    cpuStream().wait();
    Napi::Object out = Napi::Object::New(env);
    out.Set("y", y);
    out.Set("mean", mean);
    out.Set("variance", variance);
    return out;
  });
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

    ForwardPlan& p = forwardPlan(g, relu, true);
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

// batchNormBackward(dy, x, xShape, gamma, mean, variance, eps, y | null) -> { dx, dgamma, dbeta }
Napi::Value BatchNormBackward(const Napi::CallbackInfo& info) {
  Call call(info, "batchNormBackward");
  return call.run([&]() -> Napi::Value {
    const F32Arg dy = call.f32(0, "dy");
    const F32Arg x = call.f32(1, "x");
    const F32Arg gamma = call.f32(3, "gamma");
    const F32Arg mean = call.f32(4, "mean");
    const F32Arg variance = call.f32(5, "variance");
    const F32Arg y = call.f32OrNull(7, "y");
    const BnGeometry g = geometry(call, 2, call.number(6, "eps"));
    const size_t c = static_cast<size_t>(g.c);
    call.expectLength(dy, g.size(), "dy");
    call.expectLength(x, g.size(), "x");
    call.expectLength(gamma, c, "gamma");
    call.expectLength(mean, c, "mean");
    call.expectLength(variance, c, "variance");
    if (y.present()) call.expectLength(y, g.size(), "y");

    BackwardPlan& p = backwardPlan(g);
    Napi::Env env = call.env();
    Napi::Float32Array dx = newF32(env, g.size());
    Napi::Float32Array dgamma = newF32(env, c);
    Napi::Float32Array dbeta = newF32(env, c);
    float* diffDst = dy.data;
    if (y.present()) {
      // Fused ReLU: mask the incoming gradient into dx, then normalise backward in
      // place (oneDNN reads each diff_dst element before writing its diff_src).
      reluBackwardInto(dy.data, y.data, data(dx), g.size());
      diffDst = data(dx);
    }
    p.src.set_data_handle(x.data);
    p.diffDst.set_data_handle(diffDst);
    p.diffSrc.set_data_handle(data(dx));
    p.scale.set_data_handle(gamma.data);
    p.mean.set_data_handle(mean.data);
    p.variance.set_data_handle(variance.data);
    p.diffScale.set_data_handle(data(dgamma));
    p.diffShift.set_data_handle(data(dbeta));
    bindScratchpad(p.scratch);
    p.prim.execute(cpuStream(), p.args);
    cpuStream().wait();
    Napi::Object out = Napi::Object::New(env);
    out.Set("dx", dx);
    out.Set("dgamma", dgamma);
    out.Set("dbeta", dbeta);
    return out;
  });
}

}  // namespace resnet
