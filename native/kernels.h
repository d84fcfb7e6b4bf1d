// The kernels the addon exports, listed once in RESNET_KERNELS.
#pragma once

#include <napi.h>

#include <cstddef>
#include <string>

namespace resnet {

// Every kernel of the Backend interface (src/backend/backend.ts, KERNELS), as
// X(jsName, CppFunction): addon.cc registers each under its JS name, and the TypeScript
// loader checks that the addon exports exactly these. Each function parses its own
// arguments, in the order of the kernel's row in KERNELS.
#define RESNET_KERNELS(X)                                         \
  X(conv2d, Conv2d)                                               \
  X(prepareConv2d, PrepareConv2d)                                 \
  X(relayout, Relayout)                                           \
  X(conv2dBackward, Conv2dBackward)                               \
  X(conv2dBf16, Conv2dBf16)                                       \
  X(conv2dBackwardBf16, Conv2dBackwardBf16)                       \
  X(batchNormTraining, BatchNormTraining)                         \
  X(batchNormInference, BatchNormInference)                       \
  X(batchNormBackward, BatchNormBackward)                         \
  X(batchNormTrainingBf16, BatchNormTrainingBf16)                 \
  X(batchNormBackwardBf16, BatchNormBackwardBf16)                 \
  X(batchNormInferenceBackward, BatchNormInferenceBackward)       \
  X(batchNormRunningStatsInPlace, BatchNormRunningStatsInPlace)   \
  X(relu, Relu)                                                   \
  X(reluBackward, ReluBackward)                                   \
  X(add, Add)                                                     \
  X(addRelu, AddRelu)                                             \
  X(addInPlace, AddInPlace)                                       \
  X(scale, Scale)                                                 \
  X(sum, Sum)                                                     \
  X(fill, Fill)                                                   \
  X(toBf16, ToBf16)                                               \
  X(fromBf16, FromBf16)                                           \
  X(addBf16, AddBf16)                                             \
  X(addReluBf16, AddReluBf16)                                     \
  X(reluBackwardBf16, ReluBackwardBf16)                           \
  X(addInPlaceBf16, AddInPlaceBf16)                               \
  X(padChannelsSubsample, PadChannelsSubsample)                   \
  X(padChannelsSubsampleBackward, PadChannelsSubsampleBackward)   \
  X(maxPool2d, MaxPool2d)                                         \
  X(maxPool2dBackward, MaxPool2dBackward)                         \
  X(avgPool2d, AvgPool2d)                                         \
  X(avgPool2dBackward, AvgPool2dBackward)                         \
  X(globalAvgPool, GlobalAvgPool)                                 \
  X(globalAvgPoolBackward, GlobalAvgPoolBackward)                 \
  X(matmul, Matmul)                                               \
  X(sumRows, SumRows)                                             \
  X(logSoftmax, LogSoftmax)                                       \
  X(logSoftmaxBackward, LogSoftmaxBackward)                       \
  X(softmaxCrossEntropy, SoftmaxCrossEntropy)                     \
  X(sgdStep, SgdStep)

#define RESNET_DECLARE_KERNEL(js, cpp) Napi::Value cpp(const Napi::CallbackInfo& info);
RESNET_KERNELS(RESNET_DECLARE_KERNEL)
#undef RESNET_DECLARE_KERNEL

// Runtime controls, outside the Backend interface (src/backend/native-binding.ts).
// The precision of the float32 convolution kernels (conv2d, prepareConv2d, conv2dBackward):
// 'fp32', or 'bf16' (inputs rounded to bfloat16, float32 accumulation and outputs); bf16
// only where cpuHasNativeBf16(). The bf16-storage kernels (conv2dBf16, ...) are bf16 always.
Napi::Value SetConvPrecision(const Napi::CallbackInfo& info);
Napi::Value GetConvPrecision(const Napi::CallbackInfo& info);
// Whether oneDNN's effective ISA has native bf16 dot products (AVX512_BF16 or AMX).
bool cpuHasNativeBf16();
// oneDNN's effective ISA, e.g. "avx512_core_bf16" (lowered by DNNL_MAX_CPU_ISA).
std::string cpuIsaName();

// dx = dy where y > 0, else 0 (shared by reluBackward and batch norm with fused ReLU).
void reluBackwardInto(const float* dy, const float* y, float* dx, size_t n);

}  // namespace resnet
