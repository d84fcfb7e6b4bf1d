// The kernels the addon exports; each parses its own arguments (see the
// comment above its definition for the argument order, mirrored in
// src/backend/native-binding.ts).
#pragma once

#include <napi.h>

#include <cstddef>

namespace resnet {

Napi::Value Conv2d(const Napi::CallbackInfo& info);
Napi::Value Conv2dBackwardData(const Napi::CallbackInfo& info);
Napi::Value Conv2dBackwardWeights(const Napi::CallbackInfo& info);

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
