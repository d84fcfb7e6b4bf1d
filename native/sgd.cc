// PyTorch's SGD update (torch.optim.SGD, single-tensor path), in place.
#include "kernels.h"
#include "runtime.h"

namespace resnet {

// sgdStep(param, grad, momentumBuf | null, { lr, momentum, dampening, weightDecay, nesterov, firstStep })
Napi::Value SgdStep(const Napi::CallbackInfo& info) {
  Call call(info, "sgdStep");
  return call.run([&]() -> Napi::Value {
    const F32Arg param = call.f32(0, "param");
    const F32Arg grad = call.f32(1, "grad");
    const F32Arg buf = call.f32OrNull(2, "momentumBuf");
    const float lr = static_cast<float>(call.numberField(3, "attrs", "lr"));
    const float momentum = static_cast<float>(call.numberField(3, "attrs", "momentum"));
    const float dampening = static_cast<float>(call.numberField(3, "attrs", "dampening"));
    const float wd = static_cast<float>(call.numberField(3, "attrs", "weightDecay"));
    const bool nesterov = call.booleanField(3, "attrs", "nesterov", false);
    const bool first = call.booleanField(3, "attrs", "firstStep", false);
    call.describe("param [" + std::to_string(param.length) + "]");
    call.expectLength(grad, param.length, "grad");
    // As the reference: without a buffer the step is plain SGD.
    const bool useMomentum = momentum != 0.0f && buf.present();
    if (buf.present()) call.expectLength(buf, param.length, "momentumBuf");
    float* p = param.data;
    const float* g = grad.data;
    float* m = buf.data;
    const int64_t n = static_cast<int64_t>(param.length);
#pragma omp parallel for simd if (n > (1 << 16))
    for (int64_t i = 0; i < n; ++i) {
      float d = g[i];
      if (wd != 0.0f) d += wd * p[i];
      if (useMomentum) {
        // The first step initialises the buffer with the gradient itself (no dampening).
        const float v = first ? d : momentum * m[i] + (1.0f - dampening) * d;
        m[i] = v;
        d = nesterov ? d + momentum * v : v;
      }
      p[i] -= lr * d;
    }
    return call.env().Undefined();
  });
}

}  // namespace resnet
