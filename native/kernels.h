// The kernels the addon exports; each parses its own arguments (see the
// comment above its definition for the argument order, mirrored in
// src/backend/native-binding.ts).
#pragma once

#include <napi.h>

#include <cstddef>
#include <string>

namespace resnet {

Napi::Value Conv2d(const Napi::CallbackInfo& info);
Napi::Value Conv2dBackwardData(const Napi::CallbackInfo& info);
Napi::Value Conv2dBackwardWeights(const Napi::CallbackInfo& info);
// The precision of the three convolution kernels: 'fp32', or 'bf16' (inputs rounded to
// bfloat16, float32 accumulation and outputs); bf16 only where cpuHasNativeBf16().
Napi::Value SetConvPrecision(const Napi::CallbackInfo& info);
Napi::Value GetConvPrecision(const Napi::CallbackInfo& info);
// Whether oneDNN's effective ISA has native bf16 dot products (AVX512_BF16 or AMX).
bool cpuHasNativeBf16();
// oneDNN's effective ISA, e.g. "avx512_core_bf16" (lowered by DNNL_MAX_CPU_ISA).
std::string cpuIsaName();

Napi::Value BatchNormTraining(const Napi::CallbackInfo& info);
Napi::Value BatchNormInference(const Napi::CallbackInfo& info);
Napi::Value BatchNormBackward(const Napi::CallbackInfo& info);

Napi::Value Relu(const Napi::CallbackInfo& info);
Napi::Value ReluBackward(const Napi::CallbackInfo& info);
Napi::Value Add(const Napi::CallbackInfo& info);
Napi::Value AddRelu(const Napi::CallbackInfo& info);
Napi::Value AddInPlace(const Napi::CallbackInfo& info);
Napi::Value Scale(const Napi::CallbackInfo& info);
Napi::Value Sum(const Napi::CallbackInfo& info);
Napi::Value PadChannelsSubsample(const Napi::CallbackInfo& info);
Napi::Value PadChannelsSubsampleBackward(const Napi::CallbackInfo& info);

Napi::Value MaxPool2d(const Napi::CallbackInfo& info);
Napi::Value MaxPool2dBackward(const Napi::CallbackInfo& info);
Napi::Value AvgPool2d(const Napi::CallbackInfo& info);
Napi::Value AvgPool2dBackward(const Napi::CallbackInfo& info);
Napi::Value GlobalAvgPool(const Napi::CallbackInfo& info);
Napi::Value GlobalAvgPoolBackward(const Napi::CallbackInfo& info);

Napi::Value Matmul(const Napi::CallbackInfo& info);
Napi::Value SumRows(const Napi::CallbackInfo& info);

Napi::Value LogSoftmax(const Napi::CallbackInfo& info);
Napi::Value LogSoftmaxBackward(const Napi::CallbackInfo& info);
Napi::Value SoftmaxCrossEntropy(const Napi::CallbackInfo& info);

Napi::Value SgdStep(const Napi::CallbackInfo& info);

// dx = dy where y > 0, else 0 (shared by reluBackward and batch norm with fused ReLU).
void reluBackwardInto(const float* dy, const float* y, float* dx, size_t n);

}  // namespace resnet
