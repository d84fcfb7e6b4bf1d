// 2-D convolution forward, backward-data and backward-weights on NHWC activations.
//
// Weights arrive in PyTorch's OIHW layout. oneDNN only runs its fast NHWC kernels when
// the weights are in a layout it picks itself (format_tag::any; with plain OIHW it
// falls back to a reference kernel ~250x slower), so every plan reorders the weights
// into a private packed buffer before the call, and backward-weights reorders its
// packed result back out to OIHW.
//
// In bf16 precision (setConvPrecision) the activations and weights are rounded to
// bfloat16 by oneDNN reorders into private buffers before each call, the primitive
// accumulates in float32, and every output (y, dx, dw, db) is float32: the tensors
// in JS stay float32 and so do the master weights. Only CPUs whose oneDNN ISA has
// native bf16 dot products (AVX512_BF16, AMX) may select it; elsewhere oneDNN would
// emulate them, slower than float32.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>
#include <unordered_map>

#include "bf16.h"
#include "conv16.h"
#include "kernels.h"
#include "runtime.h"

namespace resnet {
namespace {

using dnnl::algorithm;
using dnnl::memory;
using dnnl::prop_kind;

std::atomic<bool> convBf16{false};

struct ConvGeometry {
  int64_t n, h, w, c, o, kh, kw, sh, sw, ph, pw, oh, ow;
  // The type the primitive reads its inputs in (f32 or bf16).
  dt in = dt::f32;
  // The caller's arrays: x's type, and whether y, dy and dx are bf16 (the bf16-storage
  // kernels conv2dBf16 and conv2dBackwardBf16) or f32. Weights and their gradients are f32.
  dt x = dt::f32;
  bool store16 = false;
  // How the activations are described to oneDNN: NHWC, or nChw16c where the two are the
  // same bytes (see withLayout).
  tag act = tag::nhwc;

  bool bf16() const { return in == dt::bf16; }
  dt grads() const { return store16 ? dt::bf16 : dt::f32; }
  // The caller's x, y (and dy) and dx as oneDNN sees them.
  memory::desc userSrc() const { return src(x); }
  memory::desc userDst() const { return dst(grads()); }
  memory::desc userDiffSrc() const { return src(grads()); }
  memory::desc src(dt t = dt::f32) const { return memory::desc({n, c, h, w}, t, act); }
  memory::desc dst(dt t = dt::f32) const { return memory::desc({n, o, oh, ow}, t, act); }
  memory::desc weightsAny(dt t = dt::f32) const { return memory::desc({o, c, kh, kw}, t, tag::any); }
  memory::desc weightsOihw() const { return memory::desc({o, c, kh, kw}, dt::f32, tag::oihw); }
  memory::desc bias() const { return memory::desc({o}, dt::f32, tag::x); }
  dims strides() const { return {sh, sw}; }
  // PyTorch's floor-mode output size already follows from the left padding, so the
  // right padding equals it (oneDNN checks the output size with the same floor).
  dims padding() const { return {ph, pw}; }
};

int64_t outSize(int64_t in, int64_t k, int64_t s, int64_t p) {
  const int64_t span = in + 2 * p - k;
  return span < 0 ? 0 : span / s + 1;
}

ConvGeometry geometry(Call& call, const dims& x, const dims& w, const dims& attrs) {
  ConvGeometry g{x[0], x[1], x[2], x[3], w[0], w[2], w[3], attrs[0], attrs[1], attrs[2], attrs[3], 0, 0,
                 convBf16 ? dt::bf16 : dt::f32};
  call.describe("x " + shapeText(x) + ", w " + shapeText(w) + ", stride " + std::to_string(g.sh) + "x" +
                std::to_string(g.sw) + ", pad " + std::to_string(g.ph) + "x" + std::to_string(g.pw));
  if (w[1] != g.c) {
    throw ArgumentError("weights take " + std::to_string(w[1]) + " input channels but x has " + std::to_string(g.c));
  }
  if (g.sh < 1 || g.sw < 1) throw ArgumentError("strides must be >= 1");
  g.oh = outSize(g.h, g.kh, g.sh, g.ph);
  g.ow = outSize(g.w, g.kw, g.sw, g.pw);
  if (g.oh < 1 || g.ow < 1) throw ArgumentError("the kernel does not fit the padded input");
  return g;
}

// Whether oneDNN's ISA here blocks channels by 16 (AVX-512 and later).
bool blocksBy16() {
  static const bool yes = [] {
    switch (dnnl::get_effective_cpu_isa()) {
      case dnnl::cpu_isa::avx512_core:
      case dnnl::cpu_isa::avx512_core_vnni:
      case dnnl::cpu_isa::avx512_core_bf16:
      case dnnl::cpu_isa::avx512_core_amx: return true;
      default: return false;
    }
  }();
  return yes;
}

// With 16 input and 16 output channels an NHWC tensor is also an nChw16c one (one block
// of 16 channels per pixel), and described so, oneDNN 2.6 on AVX-512 runs its
// jit:avx512_core / jit_bf16 kernels instead of NHWC brgconv: per layer of 16x16
// channels at 28x28, batch 64, one thread, forward 1.32 against 1.93 ms in f32 and 0.73
// against 0.91 ms in bf16, backward-weights 0.76 against 0.96 ms in bf16, backward-data
// level; f32 backward-weights is slower so (1.39 against 1.26 ms) and keeps NHWC
// (`blocked` false). `make` builds a primitive descriptor for a geometry; the nChw16c
// description is kept unless oneDNN answers it with a reference kernel. The caller's
// arrays are the same either way.
template <class Make>
auto withLayout(ConvGeometry& g, Make make, bool blocked = true) -> decltype(make(g)) {
  if (g.act != tag::nhwc) return make(g);  // the caller's arrays are nChw16c (prepareConv2d's layout)
  if (blocked && g.c == 16 && g.o == 16 && blocksBy16()) {
    g.act = tag::nChw16c;
    auto pd = make(g);
    if (std::string(pd.impl_info_str()).rfind("ref", 0) != 0) return pd;
    g.act = tag::nhwc;
  }
  return make(g);
}

std::string geometryKey(const ConvGeometry& g, int64_t a, int64_t b) {
  return cacheKey({g.n, g.h, g.w, g.c, g.o, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.bf16(), g.x == dt::bf16, g.store16,
                   g.act == tag::nChw16c, a, b});
}

memory unbound(const memory::desc& md) { return memory(md, cpuEngine(), DNNL_MEMORY_NONE); }

// Whether `in` is `f32` with bf16 elements in the same layout: then rounding is a pass
// over the array in order (every activation here: NHWC, or nChw16c at 16 channels).
bool sameLayoutBf16(const memory::desc& f32, const memory::desc& in) {
  memory::desc as = f32;
  as.data.data_type = dnnl_bf16;
  return in == as;
}

// An input of a primitive: the caller's array (`user`) and, where the primitive reads
// another type or layout (a float32 array read by a bf16 primitive), the copy it reads
// (`converted`, in a staging buffer shared by all plans) and the reorder between them,
// left empty where the layouts match and roundToBf16 does the work. Where the two
// descriptions agree (f32 precision; a bf16 array read by a bf16 primitive) the
// primitive reads `user` directly.
struct Input {
  memory user, converted;
  dnnl::reorder convert;

  Input() = default;
  Input(const memory::desc& given, const memory::desc& in) : user(unbound(given)) {
    if (in == given) return;
    converted = unbound(in);
    if (given.data.data_type != dnnl_f32 || !sameLayoutBf16(given, in)) convert = dnnl::reorder(user, converted);
  }
  const memory& arg() const { return converted ? converted : user; }
  // Points the input at `values` and, in bf16, rounds them into staging buffer `slot`.
  void bind(dnnl::stream& s, void* values, int slot);
  // As bind, but where `rounded` (another plan's input, bound to the same `values`)
  // already holds their bf16 copy in the layout this one reads, reads that copy.
  void bindAs(dnnl::stream& s, void* values, int slot, const Input& rounded) {
    if (converted && rounded.converted && rounded.converted.get_desc() == converted.get_desc()) {
      user.set_data_handle(values);
      converted.set_data_handle(rounded.converted.get_data_handle());
      return;
    }
    bind(s, values, slot);
  }
};

// Grow-only buffers for the bf16 copies of the inputs; two, because backward-weights
// reads two converted activations in one call (x in slot 0, dy in slot 1, the slot
// backward-data rounds dy into as well).
void* stagingBuffer(int slot, size_t need) {
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  thread_local std::unique_ptr<void, Free> buffers[2];
  thread_local size_t sizes[2] = {0, 0};
  if (need > sizes[slot]) {
    const size_t size = (need + 4095) / 4096 * 4096;
    void* p = std::aligned_alloc(4096, size);
    if (p == nullptr) throw std::bad_alloc();
    buffers[slot].reset(p);
    sizes[slot] = size;
  }
  return buffers[slot].get();
}

void Input::bind(dnnl::stream& s, void* values, int slot) {
  user.set_data_handle(values);
  if (!converted) return;
  void* staging = stagingBuffer(slot, converted.get_desc().get_size());
  converted.set_data_handle(staging);
  if (convert) {
    convert.execute(s, user, converted);
  } else {
    roundToBf16(static_cast<const float*>(values), static_cast<uint16_t*>(staging),
                static_cast<int64_t>(user.get_desc().get_size() / sizeof(float)));
  }
}

// The forward primitive descriptor backward plans take as their hint.
const dnnl::convolution_forward::primitive_desc& forwardHint(const ConvGeometry& g) {
  thread_local std::unordered_map<std::string, dnnl::convolution_forward::primitive_desc> cache;
  const std::string key = geometryKey(g, 0, 0);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  ConvGeometry hint = g;
  auto pd = withLayout(hint, [](const ConvGeometry& h) {
    dnnl::convolution_forward::desc d(prop_kind::forward_training, algorithm::convolution_direct, h.src(h.in),
                                      h.weightsAny(h.in), h.dst(h.in), h.strides(), h.padding(), h.padding());
    return dnnl::convolution_forward::primitive_desc(d, scratchpadAttr(), cpuEngine());
  });
  return cache.emplace(key, std::move(pd)).first->second;
}

struct ForwardPlan {
  dnnl::primitive prim;  // a convolution, or an inner product (innerProductFits)
  dnnl::reorder packWeights;
  Input src;
  memory userWeights, weights, bias, dst, scratch;
  // Where the primitive writes another layout than the caller's arrays (Winograd on NHWC ones): the
  // caller's array, the reorder out to it and, for the `sum` post-op, the reorder of
  // the residual in.
  memory userDst;
  dnnl::reorder dstOut, residualIn;
  std::unordered_map<int, memory> args;
};

constexpr int64_t kHasBias = 1, kHasSum = 2, kHasRelu = 4, kMayWinograd = 8;

// Winograd convolution for 3x3 stride-1 layers of 64, 128 or 256 float32 channels in and
// out, where oneDNN has a kernel for it (jit_wino_4x3 / jit_fp32_wino_2x3, on nChw16c
// only, so an NHWC input and output are reordered around it; compiled inference hands
// it nChw16c, prefersBlocked). Alone on one layer, two
// threads, ReLU fused, the reorders included, against NHWC brgconv: 64 channels at 8x8,
// batch 64, 0.49 against 0.69 ms; at 56x56, batch 1, 0.42 against 0.61; 128 channels at
// 28x28, batch 1, 0.36 against 0.57. Its transformed weights are 1.8-4x the size, read
// once per call: it pays in a network where the deeper layers run several images a call
// (compileInference's growing chunks; ResNet-50 at batch 16: 0.83-0.89x onnxruntime's
// speed with 64 channels only, 0.91-0.96x with 128 and 256). Not at 512 channels: 38 MB
// of weights a layer and a 53 MB oneDNN scratchpad at sixteen 7x7 images, for no
// further gain. At 16 and 32 channels it is level or slower. Its sums are in another
// order than direct convolution's: used only for inference (prepareConv2d), whose
// outputs are checked against the model's own forward.
bool winogradShape(int64_t c, int64_t o, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw) {
  return blocksBy16() && kh == 3 && kw == 3 && sh == 1 && sw == 1 && ph == 1 && pw == 1 && c == o &&
         (c == 64 || c == 128 || c == 256);
}

bool winogradFits(const ConvGeometry& g) {
  return !g.bf16() && winogradShape(g.c, g.o, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw);
}

// The activation layout a prepared convolution asks for (its `layout`): nChw16c for
// 1x1 and Winograd layers on AVX-512, where oneDNN 2.6 runs them faster on it. Each
// alone on two threads with a cold cache, jit_1x1 on nChw16c against brgconv_1x1 on
// NHWC: 64 -> 256 channels at 56x56 with the residual `sum`, 2 images, 0.76 against
// 1.10 ms; 128 -> 512 at 28x28, 4 images, 1.23 against 1.60; 512 -> 1024 stride 2, 4
// images, 2.43 against 3.79; the rest level (0.86-1.03x). Winograd reads and writes
// nChw16c only: on NHWC it needs a reorder on either side. Direct 3x3 layers stay NHWC
// (brgconv; jit:avx512_core on nChw16c is 1.14x slower at stride 2 and 1.35x at 7x7,
// one image), as does everything else.
bool prefersBlocked(const dims& w, const dims& attrs) {
  const int64_t o = w[0], c = w[1], kh = w[2], kw = w[3];
  if (!blocksBy16() || c % 16 != 0 || o % 16 != 0) return false;
  return (kh == 1 && kw == 1) || winogradShape(c, o, kh, kw, attrs[0], attrs[1], attrs[2], attrs[3]);
}

// 3x3 stride-1 pad-1 convolutions to 16 channels run our own AVX-512 kernels (conv16.cc:
// 1.1-1.5x oneDNN 2.6's on these layers in float32, 1.05-1.1x in bf16): forward, and
// backward-data of 16 -> 16 (a convolution of the same kind over dy).
bool conv16Geometry(const ConvGeometry& g) {
  return blocksBy16() && g.o == 16 && g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.ph == 1 && g.pw == 1;
}

// Float32, from 16, 3 or 1 channels.
bool conv16Fits(const ConvGeometry& g) {
  return !g.bf16() && g.x == dt::f32 && !g.store16 && conv16Channels(g.c) && conv16Geometry(g);
}

// bf16 (AVX512_BF16, which a bf16 geometry implies), from 16 channels.
bool conv16Bf16Fits(const ConvGeometry& g) { return g.bf16() && g.c == 16 && conv16Geometry(g); }

// n values as bf16: `values` where they are bf16, else rounded into staging slot `slot`.
const uint16_t* asBf16(const void* values, bool isBf16, size_t n, int slot) {
  if (isBf16) return static_cast<const uint16_t*>(values);
  auto* staging = static_cast<uint16_t*>(stagingBuffer(slot, n * sizeof(uint16_t)));
  roundToBf16(static_cast<const float*>(values), staging, static_cast<int64_t>(n));
  return staging;
}

// conv16 on the caller's arrays, the weights packed for this call.
void runConv16(const ConvGeometry& g, const float* x, const float* w, bool backward, const float* bias,
               const float* residual, float* y, bool relu) {
  thread_local float packed[conv16WeightsSize(16)];
  packConv16Weights(w, g.c, backward, packed);
  conv16(x, g.n, backward ? g.oh : g.h, backward ? g.ow : g.w, backward ? 16 : g.c, packed, bias, residual, y, relu);
}

// conv16Bf16 on the caller's arrays, the weights packed for this call.
void runConv16Bf16(const ConvGeometry& g, const void* x, bool xBf16, const float* w, bool backward, const float* bias,
                   const float* residual, void* y, bool relu) {
  thread_local uint16_t packed[kConv16Bf16WeightsSize];
  packConv16WeightsBf16(w, backward, packed);
  const int64_t h = backward ? g.oh : g.h, width = backward ? g.ow : g.w;
  conv16Bf16(asBf16(x, xBf16, static_cast<size_t>(g.n * h * width * 16), 0), g.n, h, width, packed, bias, residual, y,
             g.store16, relu);
}

// The plan around a forward primitive: its input (given as userSrc), output, packed
// weights (given as userWeights), bias and scratchpad.
template <typename PrimitiveDesc>
ForwardPlan planFor(dnnl::primitive prim, const PrimitiveDesc& pd, const memory::desc& userSrc,
                    const memory::desc& userWeights, const ConvGeometry& g, bool bias) {
  ForwardPlan p;
  p.prim = std::move(prim);
  p.src = Input(userSrc, pd.src_desc());
  p.dst = unbound(pd.dst_desc());
  p.userWeights = unbound(userWeights);
  p.weights = memory(pd.weights_desc(), cpuEngine());
  p.packWeights = dnnl::reorder(p.userWeights, p.weights);
  p.scratch = unbound(pd.scratchpad_desc());
  p.args = {{DNNL_ARG_SRC, p.src.arg()}, {DNNL_ARG_WEIGHTS, p.weights}, {DNNL_ARG_DST, p.dst},
            {DNNL_ARG_SCRATCHPAD, p.scratch}};
  if (bias) {
    p.bias = unbound(g.bias());
    p.args[DNNL_ARG_BIAS] = p.bias;
  }
  return p;
}

// A 1x1 convolution of one-pixel images is a product of matrices, [n, c] by [c, o]: the
// fully connected layer, which compiled inference runs as one (weights packed once).
// oneDNN 2.6's inner_product (brgemm) runs it faster than its convolution from four
// images on and with large weights; per call, two threads, 2048 -> 1000, hot / cold
// cache: 16 images 0.35 / 0.53-0.65 against 0.93-0.95 / 1.17-1.21 ms (dnnl_sgemm on the
// weights as given, `matmul`: 2.3 / 2.0-2.5), 8 images 0.29-0.30 / 0.51-0.57 against
// 0.46-0.49 / 0.73-0.76, but one image 0.17-0.19 / 0.43-0.58 against 0.11-0.13 /
// 0.40-0.52, and 64 -> 10 at 32 images 0.060 against 0.014. Float32 and prepared
// convolutions only (kMayWinograd): training's forward pass keeps the convolution its
// backward pass is hinted with. Where oneDNN would run it on its JIT GEMM (which must
// not take a signal, see linear.cc), the convolution runs it.
bool innerProductFits(const ConvGeometry& g, int64_t flags) {
  return (flags & kMayWinograd) && !g.bf16() && g.x == dt::f32 && g.h == 1 && g.w == 1 && g.kh == 1 && g.kw == 1 &&
         g.ph == 0 && g.pw == 0 && g.n >= 4 && g.c * g.o >= (1 << 16);
}

ForwardPlan makeForwardPlan(const ConvGeometry& geometry, int64_t flags) {
  ConvGeometry g = geometry;
  const bool bias = flags & kHasBias;
  dnnl::primitive_attr attr = scratchpadAttr();
  dnnl::post_ops ops;
  // The residual goes through oneDNN's `sum` post-op, which accumulates into dst, so
  // the residual is copied into the output first (or, with post.inPlace, the output is
  // the caller's residual array itself). A binary-add post-op would read it
  // in place, but oneDNN 2.6 then gives 1x1 convolutions its older jit_1x1 kernels
  // instead of brgconv_1x1: measured 1.34 ms against 0.85 ms (64 -> 256 channels,
  // 56x56, batch 1, one thread), 16 of ResNet-50's 53 convolutions.
  if (flags & kHasSum) ops.append_sum(1.0f);
  if (flags & kHasRelu) ops.append_eltwise(1.0f, algorithm::eltwise_relu, 0.0f, 0.0f);
  attr.set_post_ops(ops);
  const auto kind = (flags & (kHasSum | kHasRelu | kMayWinograd)) ? prop_kind::forward_inference
                                                                   : prop_kind::forward_training;
  if (innerProductFits(g, flags)) {
    // One pixel an image: both layouts are the same bytes, [n, c] in and [n, o] out.
    const memory::desc src({g.n, g.c}, dt::f32, tag::ab), weights({g.o, g.c}, dt::f32, tag::ab),
        dst({g.n, g.o}, dt::f32, tag::ab), weightsAny({g.o, g.c}, dt::f32, tag::any);
    auto d = bias ? dnnl::inner_product_forward::desc(kind, src, weightsAny, g.bias(), dst)
                  : dnnl::inner_product_forward::desc(kind, src, weightsAny, dst);
    const dnnl::inner_product_forward::primitive_desc pd(d, attr, cpuEngine());
    if (std::string(pd.impl_info_str()).find("gemm:jit") == std::string::npos) {
      return planFor(dnnl::inner_product_forward(pd), pd, src, weights, g, bias);
    }
  }
  auto describe = [&](const ConvGeometry& h, algorithm alg, const memory::desc& src, const memory::desc& dst) {
    auto d = bias ? dnnl::convolution_forward::desc(kind, alg, src, h.weightsAny(h.in), h.bias(), dst, h.strides(),
                                                    h.padding(), h.padding())
                  : dnnl::convolution_forward::desc(kind, alg, src, h.weightsAny(h.in), dst, h.strides(), h.padding(),
                                                    h.padding());
    return dnnl::convolution_forward::primitive_desc(d, attr, cpuEngine());
  };
  dnnl::convolution_forward::primitive_desc pd;
  if ((flags & kMayWinograd) && winogradFits(g)) {
    try {
      const memory::desc src({g.n, g.c, g.h, g.w}, dt::f32, tag::nChw16c), dst({g.n, g.o, g.oh, g.ow}, dt::f32, tag::nChw16c);
      pd = describe(g, algorithm::convolution_winograd, src, dst);
    } catch (const dnnl::error&) {
      pd = {};  // no Winograd kernel for this shape here: direct below
    }
  }
  if (!pd) {
    pd = withLayout(g, [&](const ConvGeometry& h) {
      return describe(h, algorithm::convolution_direct, h.src(h.in), h.userDst());
    });
  }

  ForwardPlan p = planFor(dnnl::convolution_forward(pd), pd, g.userSrc(), g.weightsOihw(), g, bias);
  if (pd.dst_desc() != g.userDst()) {
    p.userDst = unbound(g.userDst());
    p.dstOut = dnnl::reorder(p.dst, p.userDst);
    if (flags & kHasSum) p.residualIn = dnnl::reorder(p.userDst, p.dst);
  }
  return p;
}

ForwardPlan& forwardPlan(const ConvGeometry& g, int64_t flags) {
  thread_local std::unordered_map<std::string, ForwardPlan> cache;
  const std::string key = geometryKey(g, flags, 0);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  return cache.emplace(key, makeForwardPlan(g, flags)).first->second;
}

struct BackwardDataPlan {
  dnnl::convolution_backward_data prim;
  dnnl::reorder packWeights;
  Input diffDst;
  memory userWeights, weights, diffSrc, scratch;
  std::unordered_map<int, memory> args;
};

BackwardDataPlan& backwardDataPlan(const ConvGeometry& geometry) {
  thread_local std::unordered_map<std::string, BackwardDataPlan> cache;
  const std::string key = geometryKey(geometry, 0, 0);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;

  ConvGeometry g = geometry;
  auto pd = withLayout(g, [](const ConvGeometry& h) {
    dnnl::convolution_backward_data::desc d(algorithm::convolution_direct, h.userDiffSrc(), h.weightsAny(h.in),
                                            h.dst(h.in), h.strides(), h.padding(), h.padding());
    return dnnl::convolution_backward_data::primitive_desc(d, scratchpadAttr(), cpuEngine(), forwardHint(h));
  });
  BackwardDataPlan p;
  p.prim = dnnl::convolution_backward_data(pd);
  p.diffDst = Input(g.userDst(), pd.diff_dst_desc());
  p.diffSrc = unbound(pd.diff_src_desc());
  p.userWeights = unbound(g.weightsOihw());
  p.weights = memory(pd.weights_desc(), cpuEngine());
  p.packWeights = dnnl::reorder(p.userWeights, p.weights);
  p.scratch = unbound(pd.scratchpad_desc());
  p.args = {{DNNL_ARG_DIFF_DST, p.diffDst.arg()}, {DNNL_ARG_WEIGHTS, p.weights}, {DNNL_ARG_DIFF_SRC, p.diffSrc},
            {DNNL_ARG_SCRATCHPAD, p.scratch}};
  return cache.emplace(key, std::move(p)).first->second;
}

struct BackwardWeightsPlan {
  dnnl::convolution_backward_weights prim;
  dnnl::reorder unpackWeights;
  Input src, diffDst;
  memory diffWeights, userDiffWeights, diffBias, scratch;
  std::unordered_map<int, memory> args;
};

BackwardWeightsPlan& backwardWeightsPlan(const ConvGeometry& geometry, bool withBias) {
  thread_local std::unordered_map<std::string, BackwardWeightsPlan> cache;
  const std::string key = geometryKey(geometry, withBias, 0);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;

  ConvGeometry g = geometry;
  auto pd = withLayout(g, [&](const ConvGeometry& h) {
    auto d = withBias ? dnnl::convolution_backward_weights::desc(algorithm::convolution_direct, h.src(h.in),
                                                                 h.weightsAny(), h.bias(), h.dst(h.in), h.strides(),
                                                                 h.padding(), h.padding())
                      : dnnl::convolution_backward_weights::desc(algorithm::convolution_direct, h.src(h.in),
                                                                 h.weightsAny(), h.dst(h.in), h.strides(),
                                                                 h.padding(), h.padding());
    return dnnl::convolution_backward_weights::primitive_desc(d, scratchpadAttr(), cpuEngine(), forwardHint(h));
  }, g.bf16());
  BackwardWeightsPlan p;
  p.prim = dnnl::convolution_backward_weights(pd);
  p.src = Input(g.userSrc(), pd.src_desc());
  p.diffDst = Input(g.userDst(), pd.diff_dst_desc());
  p.diffWeights = memory(pd.diff_weights_desc(), cpuEngine());
  p.userDiffWeights = unbound(g.weightsOihw());
  p.unpackWeights = dnnl::reorder(p.diffWeights, p.userDiffWeights);
  p.scratch = unbound(pd.scratchpad_desc());
  p.args = {{DNNL_ARG_SRC, p.src.arg()}, {DNNL_ARG_DIFF_DST, p.diffDst.arg()}, {DNNL_ARG_DIFF_WEIGHTS, p.diffWeights},
            {DNNL_ARG_SCRATCHPAD, p.scratch}};
  if (withBias) {
    p.diffBias = unbound(g.bias());
    p.args[DNNL_ARG_DIFF_BIAS] = p.diffBias;
  }
  return cache.emplace(key, std::move(p)).first->second;
}

// A Conv2dAttrs object: [strideH, strideW, padH, padW].
dims convAttrs(const Call& call, size_t i) {
  return call.intFields(i, "attrs", {"strideH", "strideW", "padH", "padW"}, 0);
}

// The residual into the output, where the `sum` post-op adds the convolution to it.
void copyResidual(const float* residual, float* y, size_t n) {
  parallelFor(static_cast<int64_t>(n), 1 << 16, [&](int64_t begin, int64_t end) {
    std::memcpy(y + begin, residual + begin, static_cast<size_t>(end - begin) * sizeof(float));
  });
}

// post.inPlace: the output is written over post.sum (the caller's residual, which it no
// longer needs), saving the copy of the residual into a new array. x must not share
// memory with it: the convolution reads x while it writes the output.
void checkInPlace(const F32Arg& x, const F32Arg& sum) {
  if (!sum.present()) throw ArgumentError("post.inPlace needs post.sum, the array to write the output over");
  const float* xEnd = x.data + x.length;
  const float* sumEnd = sum.data + sum.length;
  if (x.data < sumEnd && sum.data < xEnd) {
    throw ArgumentError("post.inPlace: x shares memory with post.sum; pass a copy of one");
  }
}

// post.sum itself, for post.inPlace (checked present by checkInPlace).
Napi::Float32Array postSum(const Napi::CallbackInfo& info, size_t i) {
  return info[i].As<Napi::Object>().Get("sum").As<Napi::Float32Array>();
}

size_t srcSize(const ConvGeometry& g) { return static_cast<size_t>(g.n * g.h * g.w * g.c); }
size_t dstSize(const ConvGeometry& g) { return static_cast<size_t>(g.n * g.oh * g.ow * g.o); }
size_t weightsSize(const ConvGeometry& g) { return static_cast<size_t>(g.o * g.c * g.kh * g.kw); }

// The geometry of a bf16-storage kernel (conv2dBf16, conv2dBackwardBf16): bf16 primitive,
// y, dy and dx bf16, x as given. Refused where the CPU has no native bf16.
ConvGeometry bf16Storage(ConvGeometry g, bool xBf16) {
  if (!cpuHasNativeBf16()) {
    throw ArgumentError("bf16 needs native bf16 instructions (avx512_bf16 or amx_bf16); oneDNN's ISA here is " +
                        cpuIsaName());
  }
  g.in = dt::bf16;
  g.x = xBf16 ? dt::bf16 : dt::f32;
  g.store16 = true;
  return g;
}

// Runs a forward plan on the caller's arrays (y already holds the residual for `sum`).
void runForward(ForwardPlan& p, void* x, float* w, float* bias, void* y) {
  auto& s = cpuStream();
  p.userWeights.set_data_handle(w);
  p.packWeights.execute(s, p.userWeights, p.weights);
  p.src.bind(s, x, 0);
  p.dst.set_data_handle(y);
  if (bias != nullptr) p.bias.set_data_handle(bias);
  bindScratchpad(p.scratch);
  p.prim.execute(s, p.args);
  s.wait();
}

// A fresh output of n values, bfloat16 or float32, and where its values go.
Napi::TypedArray newOutput(Napi::Env env, size_t n, bool bf16, void** values) {
  if (bf16) {
    Napi::Uint16Array a = newU16(env, n);
    *values = data(a);
    return a;
  }
  Napi::Float32Array a = newF32(env, n);
  *values = data(a);
  return a;
}

// Backward-data and backward-weights in one call (arguments 3, 4 and 6-8 of
// conv2dBackward's row read here): in bf16, a float32 dy is rounded once and both
// primitives read that copy when they describe it alike (they do: both follow
// withLayout), instead of once each.
Napi::Value runBackward(Call& call, const ConvGeometry& g, const StorageArg& x, void* dy, size_t dyLength) {
  const F32Arg w = call.f32(3, "w");
  const bool withBias = call.boolean(6, "withBias");
  const bool needDx = call.boolean(7, "needDx");
  const bool needDw = call.boolean(8, "needDw");
  call.expectLength(x, srcSize(g), "x");
  if (dyLength != dstSize(g)) {
    throw ArgumentError("dy has " + std::to_string(dyLength) + " elements, expected " + std::to_string(dstSize(g)));
  }
  call.expectLength(w, weightsSize(g), "w");

  auto& s = cpuStream();
  Napi::Env env = call.env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("dx", env.Null());
  out.Set("dw", env.Null());
  out.Set("db", env.Null());
  const Input* boundDy = nullptr;  // backward-data's dy, once bound (and rounded, in bf16)
  if (needDx && conv16Bf16Fits(g)) {
    void* dx = nullptr;
    out.Set("dx", newOutput(env, srcSize(g), g.store16, &dx));
    runConv16Bf16(g, dy, g.store16, w.data, true, nullptr, nullptr, dx, false);
  } else if (needDx && conv16Fits(g) && g.c == 16) {
    void* dx = nullptr;
    out.Set("dx", newOutput(env, srcSize(g), false, &dx));
    runConv16(g, static_cast<const float*>(dy), w.data, true, nullptr, nullptr, static_cast<float*>(dx), false);
  } else if (needDx) {
    BackwardDataPlan& p = backwardDataPlan(g);
    void* dx = nullptr;
    out.Set("dx", newOutput(env, srcSize(g), g.store16, &dx));
    p.userWeights.set_data_handle(w.data);
    p.packWeights.execute(s, p.userWeights, p.weights);
    p.diffDst.bind(s, dy, 1);
    boundDy = &p.diffDst;
    p.diffSrc.set_data_handle(dx);
    bindScratchpad(p.scratch);
    p.prim.execute(s, p.args);
  }
  if (needDw) {
    BackwardWeightsPlan& p = backwardWeightsPlan(g, withBias);
    Napi::Float32Array dw = newF32(env, weightsSize(g));
    p.src.bind(s, x.data, 0);
    if (boundDy != nullptr) {
      p.diffDst.bindAs(s, dy, 1, *boundDy);
    } else {
      p.diffDst.bind(s, dy, 1);
    }
    if (withBias) {
      Napi::Float32Array db = newF32(env, static_cast<size_t>(g.o));
      p.diffBias.set_data_handle(data(db));
      out.Set("db", db);
    }
    bindScratchpad(p.scratch);
    p.prim.execute(s, p.args);
    p.userDiffWeights.set_data_handle(data(dw));
    p.unpackWeights.execute(s, p.diffWeights, p.userDiffWeights);
    out.Set("dw", dw);
  }
  s.wait();
  return out;
}

}  // namespace

// conv2d(x, xShape, w, wShape, bias | null, attrs, post?: { sum?, relu? })
Napi::Value Conv2d(const Napi::CallbackInfo& info) {
  Call call(info, "conv2d");
  return call.run([&]() -> Napi::Value {
    const F32Arg x = call.f32(0, "x");
    const F32Arg w = call.f32(2, "w");
    const F32Arg bias = call.f32OrNull(4, "bias");
    const bool hasPost = !call.absent(6);
    const F32Arg sum = hasPost ? call.f32FieldOrNull(6, "post", "sum") : F32Arg{};
    const bool relu = hasPost && call.booleanField(6, "post", "relu", false);
    const bool inPlace = hasPost && call.booleanField(6, "post", "inPlace", false);
    const ConvGeometry g = geometry(call, call.shape(1, "xShape", 4), call.shape(3, "wShape", 4),
                                    convAttrs(call, 5));
    call.expectLength(x, srcSize(g), "x");
    call.expectLength(w, weightsSize(g), "w");
    if (bias.present()) call.expectLength(bias, static_cast<size_t>(g.o), "bias");
    if (sum.present()) call.expectLength(sum, dstSize(g), "sum");
    if (inPlace) checkInPlace(x, sum);

    Napi::Float32Array y = inPlace ? postSum(info, 6) : newF32(call.env(), dstSize(g));
    if (conv16Bf16Fits(g)) {
      runConv16Bf16(g, x.data, false, w.data, false, bias.data, sum.data, data(y), relu);
      return y;
    }
    if (conv16Fits(g)) {
      runConv16(g, x.data, w.data, false, bias.data, sum.data, data(y), relu);
      return y;
    }
    const int64_t flags = (bias.present() ? kHasBias : 0) | (sum.present() ? kHasSum : 0) | (relu ? kHasRelu : 0);
    if (sum.present() && !inPlace) copyResidual(sum.data, data(y), dstSize(g));
    runForward(forwardPlan(g, flags), x.data, w.data, bias.data, data(y));
    return y;
  });
}

// conv2dBf16(x, xShape, w, wShape, bias | null, attrs) -> y: bf16 inputs (x as given, a
// Float32Array rounded first), float32 accumulation, y bfloat16.
Napi::Value Conv2dBf16(const Napi::CallbackInfo& info) {
  Call call(info, "conv2dBf16");
  return call.run([&]() -> Napi::Value {
    const StorageArg x = call.storage(0, "x");
    const F32Arg w = call.f32(2, "w");
    const F32Arg bias = call.f32OrNull(4, "bias");
    const ConvGeometry g = bf16Storage(geometry(call, call.shape(1, "xShape", 4), call.shape(3, "wShape", 4),
                                                convAttrs(call, 5)), x.bf16);
    call.expectLength(x, srcSize(g), "x");
    call.expectLength(w, weightsSize(g), "w");
    if (bias.present()) call.expectLength(bias, static_cast<size_t>(g.o), "bias");
    Napi::Uint16Array y = newU16(call.env(), dstSize(g));
    if (conv16Bf16Fits(g)) {
      runConv16Bf16(g, x.data, x.bf16, w.data, false, bias.data, nullptr, data(y), false);
      return y;
    }
    runForward(forwardPlan(g, bias.present() ? kHasBias : 0), x.data, w.data, bias.data, data(y));
    return y;
  });
}

namespace {

// The state behind one prepareConv2d: the caller's OIHW weights (held, read only when a
// packed layout is first needed) with their per-output-channel scale, the bias, and per
// input shape and post-ops the plan, all plans sharing one packed copy of the weights per
// layout oneDNN picks.
struct PreparedConv {
  Napi::Reference<Napi::Float32Array> weights;
  dims wShape, attrs;
  std::vector<float> bias;
  bool hasBias = false;
  // Multiplies each output channel's weights as they are packed (a batch norm folded in);
  // empty: none.
  std::vector<float> scale;
  std::unordered_map<std::string, ForwardPlan> plans;
  std::vector<memory> packed;
  // The weights in conv16's layout, where it runs (packed on first use), and in bf16.
  std::vector<float> packed16;
  std::vector<uint16_t> packed16Bf16;

  // Calls pack with the OIHW weights the convolution computes with: the caller's array, or
  // with a scale a scaled copy that lives only for the call.
  template <typename Pack>
  void withWeights(Pack&& pack) {
    const float* w = weights.Value().Data();
    if (scale.empty()) {
      pack(w);
      return;
    }
    const size_t per = static_cast<size_t>(product(wShape) / wShape[0]);
    std::vector<float> scaled(per * scale.size());
    for (size_t o = 0; o < scale.size(); ++o) {
      for (size_t i = o * per; i < (o + 1) * per; ++i) scaled[i] = w[i] * scale[o];
    }
    pack(scaled.data());
  }

  const uint16_t* conv16Bf16Weights() {
    if (packed16Bf16.empty()) {
      packed16Bf16.resize(kConv16Bf16WeightsSize);
      withWeights([&](const float* w) { packConv16WeightsBf16(w, false, packed16Bf16.data()); });
    }
    return packed16Bf16.data();
  }

  const float* conv16Weights() {
    if (packed16.empty()) {
      packed16.resize(conv16WeightsSize(wShape[1]));
      withWeights([&](const float* w) { packConv16Weights(w, wShape[1], false, packed16.data()); });
    }
    return packed16.data();
  }

  ForwardPlan& plan(const ConvGeometry& g, int64_t flags) {
    const std::string key = geometryKey(g, flags, 0);
    auto it = plans.find(key);
    if (it != plans.end()) return it->second;
    ForwardPlan p = makeForwardPlan(g, flags);
    const memory::desc want = p.weights.get_desc();
    auto same = std::find_if(packed.begin(), packed.end(), [&](const memory& m) { return m.get_desc() == want; });
    if (same == packed.end()) {
      withWeights([&](const float* w) {
        p.userWeights.set_data_handle(const_cast<float*>(w));
        p.packWeights.execute(cpuStream(), p.userWeights, p.weights);
        cpuStream().wait();
      });
      packed.push_back(p.weights);
    } else {
      p.weights = *same;
      p.args[DNNL_ARG_WEIGHTS] = p.weights;
    }
    // The plan reads its packed weights only; the OIHW handle is not kept.
    p.userWeights = memory();
    p.packWeights = dnnl::reorder();
    if (hasBias) p.bias.set_data_handle(bias.data());
    return plans.emplace(key, std::move(p)).first->second;
  }
};

}  // namespace

// prepareConv2d(w, wShape, bias | null, attrs, scale? | null)
//   -> run(x, xShape, post?: { sum?, relu?, inPlace? }, layout? = 'nhwc') -> y, with run.layout
// conv2d with the weights and bias given once: the weights (each output channel times
// scale[o] where given) are packed once per layout (not on every call), and each input
// shape keeps its primitive. x, post.sum and y are in `layout` (xShape is [N, H, W, C]
// either way); run.layout is the one this convolution runs fastest on (prefersBlocked).
// The caller must not change w afterwards.
Napi::Value PrepareConv2d(const Napi::CallbackInfo& info) {
  Call call(info, "prepareConv2d");
  return call.run([&]() -> Napi::Value {
    auto state = std::make_shared<PreparedConv>();
    const F32Arg bias = call.f32OrNull(2, "bias");
    const F32Arg scale = call.absent(4) ? F32Arg{} : call.f32OrNull(4, "scale");
    call.f32(0, "w");
    state->wShape = call.shape(1, "wShape", 4);
    state->attrs = convAttrs(call, 3);
    call.describe("w " + shapeText(state->wShape));
    call.expectLength(call.f32(0, "w"), static_cast<size_t>(product(state->wShape)), "w");
    if (bias.present()) call.expectLength(bias, static_cast<size_t>(state->wShape[0]), "bias");
    if (scale.present()) call.expectLength(scale, static_cast<size_t>(state->wShape[0]), "scale");
    state->scale.assign(scale.data, scale.data + scale.length);
    state->weights = Napi::Persistent(info[0].As<Napi::Float32Array>());
    state->hasBias = bias.present();
    state->bias.assign(bias.data, bias.data + bias.length);
    const bool blocked = prefersBlocked(state->wShape, state->attrs);
    Napi::Function fn = Napi::Function::New(
        call.env(),
        [state](const Napi::CallbackInfo& runInfo) -> Napi::Value {
          Call run(runInfo, "preparedConv2d");
          return run.run([&]() -> Napi::Value {
            const F32Arg x = run.f32(0, "x");
            const bool hasPost = !run.absent(2);
            const F32Arg sum = hasPost ? run.f32FieldOrNull(2, "post", "sum") : F32Arg{};
            const bool relu = hasPost && run.booleanField(2, "post", "relu", false);
            const bool inPlace = hasPost && run.booleanField(2, "post", "inPlace", false);
            ConvGeometry g = geometry(run, run.shape(1, "xShape", 4), state->wShape, state->attrs);
            g.act = layoutArg(runInfo, 3);
            checkChannels(g.act, g.c, "x");
            checkChannels(g.act, g.o, "y");
            run.expectLength(x, srcSize(g), "x");
            if (sum.present()) run.expectLength(sum, dstSize(g), "sum");
            if (inPlace) checkInPlace(x, sum);
            Napi::Float32Array y = inPlace ? postSum(runInfo, 2) : newF32(run.env(), dstSize(g));
            if (conv16Bf16Fits(g)) {
              conv16Bf16(asBf16(x.data, false, srcSize(g), 0), g.n, g.h, g.w, state->conv16Bf16Weights(),
                         state->hasBias ? state->bias.data() : nullptr, sum.data, data(y), false, relu);
              return y;
            }
            if (conv16Fits(g)) {
              conv16(x.data, g.n, g.h, g.w, g.c, state->conv16Weights(), state->hasBias ? state->bias.data() : nullptr,
                     sum.data, data(y), relu);
              return y;
            }
            const int64_t flags = (state->hasBias ? kHasBias : 0) | (sum.present() ? kHasSum : 0) |
                                  (relu ? kHasRelu : 0) | kMayWinograd;
            ForwardPlan& p = state->plan(g, flags);
            auto& s = cpuStream();
            p.src.bind(s, x.data, 0);
            if (p.dstOut) {
              // The primitive writes its own layout into staging slot 1, reordered out to y.
              p.dst.set_data_handle(stagingBuffer(1, p.dst.get_desc().get_size()));
              if (sum.present()) {
                p.userDst.set_data_handle(sum.data);
                p.residualIn.execute(s, p.userDst, p.dst);
              }
            } else {
              p.dst.set_data_handle(data(y));
              if (sum.present() && !inPlace) copyResidual(sum.data, data(y), dstSize(g));
            }
            bindScratchpad(p.scratch);
            p.prim.execute(s, p.args);
            if (p.dstOut) {
              p.userDst.set_data_handle(data(y));
              p.dstOut.execute(s, p.dst, p.userDst);
            }
            s.wait();
            return y;
          });
        },
        "preparedConv2d");
    fn.Set("layout", Napi::String::New(call.env(), blocked ? "nchw16c" : "nhwc"));
    return fn;
  });
}

// relayout(x, xShape, to) -> y: an activation of shape [N, H, W, C] from one layout into the other
// ('nhwc' <-> 'nchw16c'). Each pixel's 16 channels of a block are 64 contiguous bytes in
// both, so it is a copy of 64-byte rows in another order.
Napi::Value Relayout(const Napi::CallbackInfo& info) {
  Call call(info, "relayout");
  return call.run([&]() -> Napi::Value {
    const F32Arg x = call.f32(0, "x");
    const dims s = call.shape(1, "xShape", 4);
    call.describe("x " + shapeText(s));
    if (call.absent(2)) throw ArgumentError("layout must be 'nhwc' or 'nchw16c'");
    const bool toBlocked = layoutArg(info, 2) == tag::nChw16c;
    checkChannels(tag::nChw16c, s[3], "x");
    const int64_t pixels = s[1] * s[2], blocks = s[3] / 16;
    call.expectLength(x, static_cast<size_t>(s[0] * pixels * s[3]), "x");
    Napi::Float32Array y = newF32(call.env(), x.length);
    const float* src = x.data;
    float* dst = data(y);
    // One (image, block) plane of `pixels` rows a task: plane r holds block r % blocks of image r / blocks.
    // Activations up to kCopyGrain floats are copied on one thread.
    parallelFor(s[0] * blocks, std::max<int64_t>(1, kCopyGrain / (pixels * 16)), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t plain = (r / blocks) * pixels * s[3] + (r % blocks) * 16, planar = r * pixels * 16;
        for (int64_t p = 0; p < pixels; ++p) {
          if (toBlocked) {
            std::memcpy(dst + planar + p * 16, src + plain + p * s[3], 16 * sizeof(float));
          } else {
            std::memcpy(dst + plain + p * s[3], src + planar + p * 16, 16 * sizeof(float));
          }
        }
      }
    });
    return y;
  });
}

// conv2dBackward(x, xShape, dy, w, wShape, attrs, withBias, needDx, needDw) -> { dx, dw, db }
Napi::Value Conv2dBackward(const Napi::CallbackInfo& info) {
  Call call(info, "conv2dBackward");
  return call.run([&]() -> Napi::Value {
    const F32Arg x = call.f32(0, "x");
    const F32Arg dy = call.f32(2, "dy");
    const ConvGeometry g = geometry(call, call.shape(1, "xShape", 4), call.shape(4, "wShape", 4),
                                    convAttrs(call, 5));
    return runBackward(call, g, StorageArg{x.data, x.length, false}, dy.data, dy.length);
  });
}

// conv2dBackwardBf16(x, xShape, dy, w, wShape, attrs, withBias, needDx, needDw) -> { dx, dw, db }:
// the gradients of conv2dBf16, from dy bfloat16, with dx bfloat16 (dw, db float32).
Napi::Value Conv2dBackwardBf16(const Napi::CallbackInfo& info) {
  Call call(info, "conv2dBackwardBf16");
  return call.run([&]() -> Napi::Value {
    const StorageArg x = call.storage(0, "x");
    const U16Arg dy = call.u16(2, "dy");
    const ConvGeometry g = bf16Storage(geometry(call, call.shape(1, "xShape", 4), call.shape(4, "wShape", 4),
                                                convAttrs(call, 5)), x.bf16);
    return runBackward(call, g, x, dy.data, dy.length);
  });
}

bool cpuHasNativeBf16() {
  const auto isa = dnnl::get_effective_cpu_isa();
  return isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
}

std::string cpuIsaName() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41: return "sse41";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx512_mic: return "avx512_mic";
    case dnnl::cpu_isa::avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    case dnnl::cpu_isa::all: return "all";
    default: return "unknown";
  }
}

// setConvPrecision('fp32' | 'bf16')
Napi::Value SetConvPrecision(const Napi::CallbackInfo& info) {
  Call call(info, "setConvPrecision");
  return call.run([&]() -> Napi::Value {
    if (!info[0].IsString()) throw ArgumentError("precision must be 'fp32' or 'bf16'");
    const std::string p = info[0].As<Napi::String>().Utf8Value();
    if (p != "fp32" && p != "bf16") throw ArgumentError("precision must be 'fp32' or 'bf16', got '" + p + "'");
    if (p == "bf16" && !cpuHasNativeBf16()) {
      throw ArgumentError("bf16 needs native bf16 instructions (avx512_bf16 or amx_bf16); oneDNN's ISA here is " +
                          cpuIsaName());
    }
    convBf16 = p == "bf16";
    return info.Env().Undefined();
  });
}

Napi::Value GetConvPrecision(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), convBf16 ? "bf16" : "fp32");
}

}  // namespace resnet
