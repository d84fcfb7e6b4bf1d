// Module registration and threading.
#include <malloc.h>
#include <omp.h>

#include <cstdlib>
#include <mutex>
#include <string>

#include "kernels.h"
#include "runtime.h"

namespace resnet {
namespace {

// RESNET_THREADS caps the OpenMP threads that oneDNN and the loops here use;
// unset, OpenMP's default (all cores) stands.
void applyThreadsFromEnv() {
  const char* v = std::getenv("RESNET_THREADS");
  if (v == nullptr || *v == '\0') return;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (end != nullptr && *end == '\0' && n >= 1 && n <= 9999) omp_set_num_threads(static_cast<int>(n));
}

// Every kernel returns fresh multi-megabyte Float32Arrays, which V8 allocates with
// malloc. glibc serves such sizes with fresh mmaps (or trims them off the heap on
// free), so each output would page-fault on first write: 2,048 faults and ~5 ms per
// 8 MB activation, more than the ReLU that fills it. Keeping blocks up to 32 MB
// (glibc's cap) on the heap and not trimming it makes them reusable, so RSS stays at
// the working set's peak. Skipped when the user tunes malloc through the environment.
void tuneMalloc() {
#if defined(__GLIBC__)
  static std::once_flag once;
  std::call_once(once, []() {
    if (std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr || std::getenv("MALLOC_TRIM_THRESHOLD_") != nullptr ||
        std::getenv("GLIBC_TUNABLES") != nullptr) {
      return;
    }
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  });
#endif
}

Napi::Value GetThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), omp_get_max_threads()); }

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Call call(info, "setThreads");
  return call.run([&]() -> Napi::Value {
    const int64_t n = call.integer(0, "threads");
    if (n < 1 || n > 9999) throw ArgumentError("threads must lie in [1, 9999]");
    omp_set_num_threads(static_cast<int>(n));
    return info.Env().Undefined();
  });
}

Napi::Value ScratchOpen(const Napi::CallbackInfo& info) {
  scratchOpen(info.Env());
  return info.Env().Undefined();
}

Napi::Value ScratchClose(const Napi::CallbackInfo& info) {
  Call call(info, "scratchClose");
  return call.run([&]() -> Napi::Value {
    scratchClose(info.Env());
    return info.Env().Undefined();
  });
}

Napi::Value ScratchFrameOpen(const Napi::CallbackInfo& info) {
  scratchFrameOpen(info.Env());
  return info.Env().Undefined();
}

Napi::Value ScratchFrameClose(const Napi::CallbackInfo& info) {
  Call call(info, "scratchFrameClose");
  return call.run([&]() -> Napi::Value {
    scratchFrameClose(info.Env());
    return info.Env().Undefined();
  });
}

Napi::Value ScratchFloat32(const Napi::CallbackInfo& info) {
  Call call(info, "scratchFloat32");
  return call.run([&]() -> Napi::Value {
    const int64_t n = call.integer(0, "n");
    if (n < 0) throw ArgumentError("n must not be negative");
    return newF32(info.Env(), static_cast<size_t>(n));
  });
}

Napi::Value ScratchRelease(const Napi::CallbackInfo& info) {
  Call call(info, "scratchRelease");
  return call.run([&]() -> Napi::Value {
    scratchRelease(info.Env());
    return info.Env().Undefined();
  });
}

Napi::Value SetScratchPoison(const Napi::CallbackInfo& info) {
  Call call(info, "setScratchPoison");
  return call.run([&]() -> Napi::Value {
    scratchPoison(info.Env(), call.boolean(0, "on"));
    return info.Env().Undefined();
  });
}

Napi::Value ScratchStatsJs(const Napi::CallbackInfo& info) {
  const ScratchStats s = scratchStats(info.Env());
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("reservedBytes", Napi::Number::New(info.Env(), static_cast<double>(s.reserved)));
  o.Set("peakBytes", Napi::Number::New(info.Env(), static_cast<double>(s.peak)));
  o.Set("depth", Napi::Number::New(info.Env(), s.depth));
  return o;
}

std::string onednnVersion() {
  const dnnl_version_t* v = dnnl_version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  applyThreadsFromEnv();
  tuneMalloc();
  const auto fn = [&](const char* name, Napi::Function::Callback cb) {
    exports.Set(name, Napi::Function::New(env, cb, name));
  };
  exports.Set("onednnVersion", Napi::String::New(env, onednnVersion()));
  exports.Set("cpuIsa", Napi::String::New(env, cpuIsaName()));
  exports.Set("nativeBf16", Napi::Boolean::New(env, cpuHasNativeBf16()));
  fn("getThreads", GetThreads);
  fn("setThreads", SetThreads);
  fn("setConvPrecision", SetConvPrecision);
  fn("getConvPrecision", GetConvPrecision);
  fn("scratchOpen", ScratchOpen);
  fn("scratchClose", ScratchClose);
  fn("scratchFrameOpen", ScratchFrameOpen);
  fn("scratchFrameClose", ScratchFrameClose);
  fn("scratchFloat32", ScratchFloat32);
  fn("scratchRelease", ScratchRelease);
  fn("setScratchPoison", SetScratchPoison);
  fn("scratchStats", ScratchStatsJs);
#define RESNET_REGISTER_KERNEL(js, cpp) fn(#js, cpp);
  RESNET_KERNELS(RESNET_REGISTER_KERNEL)
#undef RESNET_REGISTER_KERNEL
  return exports;
}

}  // namespace
}  // namespace resnet

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return resnet::Init(env, exports); }

NODE_API_MODULE(resnet_native, InitModule)
