// Shared plumbing of the addon: the oneDNN engine and stream, the scratchpad,
// argument parsing with errors that name the kernel, and output allocation.
#pragma once

#include <napi.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

namespace resnet {

using dims = dnnl::memory::dims;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

// The engine is shared; the stream, the scratchpad, the staging buffers and the
// primitive caches are per thread, so worker threads (training replicas) run kernels
// side by side without a lock.
dnnl::engine& cpuEngine();
dnnl::stream& cpuStream();

// All primitives use a user scratchpad so that one grow-only buffer serves them
// all instead of each primitive keeping its own.
dnnl::primitive_attr scratchpadAttr();
// Points `mem` (created from a primitive's scratchpad_desc) at a buffer of at
// least its size; the buffer only grows, bounded by the largest primitive.
void bindScratchpad(dnnl::memory& mem);

// A problem in the caller's arguments (wrong type, size or shape).
class ArgumentError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct F32Arg {
  float* data = nullptr;
  size_t length = 0;
  bool present() const { return data != nullptr || length != 0; }
};

// bfloat16 values as their bit patterns (the upper halves of float32s) in a Uint16Array.
struct U16Arg {
  uint16_t* data = nullptr;
  size_t length = 0;
  bool present() const { return data != nullptr || length != 0; }
};

// A tensor's storage: a Float32Array, or a Uint16Array of bfloat16 values.
struct StorageArg {
  void* data = nullptr;
  size_t length = 0;
  bool bf16 = false;
  const float* f32() const { return static_cast<const float*>(data); }
  const uint16_t* u16() const { return static_cast<const uint16_t*>(data); }
};

struct I32Arg {
  int32_t* data = nullptr;
  size_t length = 0;
};

// Parses the arguments of one kernel call and turns every failure (bad argument,
// oneDNN error) into a JS Error that names the kernel and the shapes involved.
class Call {
 public:
  Call(const Napi::CallbackInfo& info, const char* kernel) : info_(info), kernel_(kernel) {}

  Napi::Env env() const { return info_.Env(); }

  F32Arg f32(size_t i, const char* name) const;
  // null or undefined gives an absent argument.
  F32Arg f32OrNull(size_t i, const char* name) const;
  I32Arg i32(size_t i, const char* name) const;
  U16Arg u16(size_t i, const char* name) const;
  U16Arg u16OrNull(size_t i, const char* name) const;
  // A Float32Array or a Uint16Array (bfloat16).
  StorageArg storage(size_t i, const char* name) const;
  // An array of `rank` positive integers (a shape).
  dims shape(size_t i, const char* name, size_t rank) const { return ints(i, name, rank, 1); }
  // An array of `rank` integers, each at least `min`.
  dims ints(size_t i, const char* name, size_t rank, int64_t min) const;
  int64_t integer(size_t i, const char* name) const;
  double number(size_t i, const char* name) const;
  bool boolean(size_t i, const char* name) const;

  // Members of a plain-object argument (attrs, post-ops): integers >= `min` read in the
  // order of `keys`, a number, a boolean (absent gives `fallback`), a Float32Array or absent.
  dims intFields(size_t i, const char* name, std::initializer_list<const char*> keys, int64_t min) const;
  double numberField(size_t i, const char* name, const char* key) const;
  bool booleanField(size_t i, const char* name, const char* key, bool fallback) const;
  F32Arg f32FieldOrNull(size_t i, const char* name, const char* key) const;
  // Whether argument i is missing, null or undefined.
  bool absent(size_t i) const;

  // Throws ArgumentError unless `arg` holds exactly `expected` elements.
  void expectLength(const F32Arg& arg, size_t expected, const char* name) const;
  void expectLength(const I32Arg& arg, size_t expected, const char* name) const;
  void expectLength(const U16Arg& arg, size_t expected, const char* name) const;
  void expectLength(const StorageArg& arg, size_t expected, const char* name) const;

  // Text appended to error messages, e.g. "x [1,7,7,3], w [5,3,3,3]".
  void describe(std::string text) { where_ = std::move(text); }

  template <typename Body>
  Napi::Value run(Body&& body) {
    try {
      return body();
    } catch (const Napi::Error&) {
      throw;
    } catch (const dnnl::error& e) {
      fail(std::string("oneDNN error (status ") + std::to_string(static_cast<int>(e.status)) +
           "): " + e.what());
    } catch (const std::exception& e) {
      fail(e.what());
    }
  }

 private:
  [[noreturn]] void fail(const std::string& reason) const;
  Napi::Value arg(size_t i) const;

  const Napi::CallbackInfo& info_;
  const char* kernel_;
  std::string where_;
};

std::string shapeText(const dims& d);

// A Float32Array of n elements whose memory is NOT zero-filled (every kernel
// writes all of its output), which saves a pass over each activation. While a scratch
// scope is open on this thread, it is a view into the thread's scratch buffers.
Napi::Float32Array newF32(Napi::Env env, size_t n);

// The scratch: while a scope is open, kernel outputs are carved from a few large
// buffers of this JS thread (at most 2 GiB; past that they are allocated as usual),
// and when the outermost scope closes every output made in it is overwritten by later
// ones. A training step allocates hundreds of megabytes of activations and gradients;
// from the scratch they cost V8 no external memory, so no garbage collection.
// With poison on, closing fills the released memory with NaN (tests: an output that
// outlives its scope shows up).
struct ScratchStats {
  size_t reserved;
  size_t peak;
  int depth;
};
void scratchOpen(Napi::Env env);
void scratchClose(Napi::Env env);
// A frame is a scope that, when it closes, releases everything carved from the scratch
// since it opened (the scopes around it keep theirs).
void scratchFrameOpen(Napi::Env env);
void scratchFrameClose(Napi::Env env);
// Frees the buffers (no scope may be open).
void scratchRelease(Napi::Env env);
void scratchPoison(Napi::Env env, bool on);
ScratchStats scratchStats(Napi::Env env);
Napi::Int32Array newI32(Napi::Env env, size_t n);
// As newF32, for n bfloat16 values (bit patterns).
Napi::Uint16Array newU16(Napi::Env env, size_t n);

float* data(Napi::Float32Array a);
uint16_t* data(Napi::Uint16Array a);

// Cache key made of integers; primitives are cached per distinct key, so the caches
// are bounded by the number of distinct layer shapes a program uses.
std::string cacheKey(std::initializer_list<int64_t> parts);

int64_t product(const dims& d);

// Elements below which an element-wise pass runs on one thread: the fork/join of a
// parallel region costs more than it saves.
constexpr int64_t kElementwiseGrain = 1 << 15;

// Floats below which a plain copy (a relayout) runs on one thread: one thread copies
// 1 MiB in cache in 20-50 us, about what waking a second one costs on a 2-vCPU VM
// (40-70 us a parallel region with passive waiting; BENCHMARKS.md).
constexpr int64_t kCopyGrain = 1 << 18;

// The activation layout argument i: 'nhwc' (absent) or 'nchw16c' (as nChw16c: channel blocks of 16, each an
// NHWC tensor of 16 channels, one after another within each image).
tag layoutArg(const Napi::CallbackInfo& info, size_t i);
// Channels c in a layout: nChw16c holds whole blocks of 16 only.
void checkChannels(tag layout, int64_t c, const char* what);

// Runs `body(i)` for i in [0, n), split across the OpenMP threads when n is large
// enough for the fork to pay off.
void parallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& body);

}  // namespace resnet
