#include "runtime.h"

#include <omp.h>

#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>

namespace resnet {

dnnl::engine& cpuEngine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& cpuStream() {
  thread_local dnnl::stream stream(cpuEngine());
  return stream;
}

dnnl::primitive_attr scratchpadAttr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

namespace {
struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};
thread_local std::unique_ptr<void, AlignedFree> scratchBuffer;
thread_local size_t scratchSize = 0;
}  // namespace

void bindScratchpad(dnnl::memory& mem) {
  const size_t need = mem.get_desc().get_size();
  if (need == 0) return;
  if (need > scratchSize) {
    const size_t size = (need + 4095) / 4096 * 4096;
    void* p = std::aligned_alloc(4096, size);
    if (p == nullptr) throw std::bad_alloc();
    scratchBuffer.reset(p);
    scratchSize = size;
  }
  mem.set_data_handle(scratchBuffer.get());
}

Napi::Value Call::arg(size_t i) const { return info_[i]; }

namespace {
F32Arg asF32(const Napi::Value& v, const std::string& name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw ArgumentError(name + " must be a Float32Array");
  }
  auto a = v.As<Napi::Float32Array>();
  return F32Arg{a.Data(), a.ElementLength()};
}

Napi::Object asObject(const Napi::Value& v, const char* name) {
  if (!v.IsObject() || v.IsArray()) throw ArgumentError(std::string(name) + " must be an object");
  return v.As<Napi::Object>();
}
}  // namespace

F32Arg Call::f32(size_t i, const char* name) const { return asF32(arg(i), name); }

bool Call::absent(size_t i) const { return i >= info_.Length() || arg(i).IsNull() || arg(i).IsUndefined(); }

dims Call::intFields(size_t i, const char* name, std::initializer_list<const char*> keys, int64_t min) const {
  const Napi::Object o = asObject(arg(i), name);
  dims out;
  for (const char* key : keys) {
    const Napi::Value e = o.Get(key);
    const double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : -1.0e300;
    if (!(d >= static_cast<double>(min)) || d > 9.0e15 || d != static_cast<double>(static_cast<int64_t>(d))) {
      throw ArgumentError(std::string(name) + "." + key + " must be an integer >= " + std::to_string(min));
    }
    out.push_back(static_cast<int64_t>(d));
  }
  return out;
}

double Call::numberField(size_t i, const char* name, const char* key) const {
  const Napi::Value e = asObject(arg(i), name).Get(key);
  if (!e.IsNumber()) throw ArgumentError(std::string(name) + "." + key + " must be a number");
  return e.As<Napi::Number>().DoubleValue();
}

bool Call::booleanField(size_t i, const char* name, const char* key, bool fallback) const {
  const Napi::Value e = asObject(arg(i), name).Get(key);
  if (e.IsUndefined()) return fallback;
  if (!e.IsBoolean()) throw ArgumentError(std::string(name) + "." + key + " must be a boolean");
  return e.As<Napi::Boolean>().Value();
}

F32Arg Call::f32FieldOrNull(size_t i, const char* name, const char* key) const {
  const Napi::Value e = asObject(arg(i), name).Get(key);
  if (e.IsNull() || e.IsUndefined()) return F32Arg{};
  return asF32(e, std::string(name) + "." + key);
}

F32Arg Call::f32OrNull(size_t i, const char* name) const {
  Napi::Value v = arg(i);
  if (v.IsNull() || v.IsUndefined()) return F32Arg{};
  return f32(i, name);
}

U16Arg Call::u16(size_t i, const char* name) const {
  Napi::Value v = arg(i);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint16_array) {
    throw ArgumentError(std::string(name) + " must be a Uint16Array (bfloat16 values)");
  }
  auto a = v.As<Napi::Uint16Array>();
  return U16Arg{a.Data(), a.ElementLength()};
}

U16Arg Call::u16OrNull(size_t i, const char* name) const {
  Napi::Value v = arg(i);
  if (v.IsNull() || v.IsUndefined()) return U16Arg{};
  return u16(i, name);
}

StorageArg Call::storage(size_t i, const char* name) const {
  Napi::Value v = arg(i);
  if (v.IsTypedArray()) {
    const napi_typedarray_type t = v.As<Napi::TypedArray>().TypedArrayType();
    if (t == napi_float32_array) {
      auto a = v.As<Napi::Float32Array>();
      return StorageArg{a.Data(), a.ElementLength(), false};
    }
    if (t == napi_uint16_array) {
      auto a = v.As<Napi::Uint16Array>();
      return StorageArg{a.Data(), a.ElementLength(), true};
    }
  }
  throw ArgumentError(std::string(name) + " must be a Float32Array or a Uint16Array (bfloat16 values)");
}

I32Arg Call::i32(size_t i, const char* name) const {
  Napi::Value v = arg(i);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    throw ArgumentError(std::string(name) + " must be an Int32Array");
  }
  auto a = v.As<Napi::Int32Array>();
  return I32Arg{a.Data(), a.ElementLength()};
}

dims Call::ints(size_t i, const char* name, size_t rank, int64_t min) const {
  Napi::Value v = arg(i);
  if (!v.IsArray()) throw ArgumentError(std::string(name) + " must be an array of " + std::to_string(rank) + " sizes");
  auto a = v.As<Napi::Array>();
  if (a.Length() != rank) {
    throw ArgumentError(std::string(name) + " must have " + std::to_string(rank) + " dimensions, got " +
                        std::to_string(a.Length()));
  }
  dims out(rank);
  for (uint32_t k = 0; k < rank; ++k) {
    Napi::Value e = a.Get(k);
    if (!e.IsNumber()) throw ArgumentError(std::string(name) + " holds a non-number");
    const double d = e.As<Napi::Number>().DoubleValue();
    if (!(d >= static_cast<double>(min)) || d > 9.0e15 || d != static_cast<double>(static_cast<int64_t>(d))) {
      throw ArgumentError(std::string(name) + " must hold integers >= " + std::to_string(min));
    }
    out[k] = static_cast<int64_t>(d);
  }
  return out;
}

int64_t Call::integer(size_t i, const char* name) const {
  const double d = number(i, name);
  if (d != static_cast<double>(static_cast<int64_t>(d))) throw ArgumentError(std::string(name) + " must be an integer");
  return static_cast<int64_t>(d);
}

double Call::number(size_t i, const char* name) const {
  Napi::Value v = arg(i);
  if (!v.IsNumber()) throw ArgumentError(std::string(name) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

bool Call::boolean(size_t i, const char* name) const {
  Napi::Value v = arg(i);
  if (!v.IsBoolean()) throw ArgumentError(std::string(name) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

void Call::expectLength(const F32Arg& a, size_t expected, const char* name) const {
  if (a.length != expected) {
    throw ArgumentError(std::string(name) + " has " + std::to_string(a.length) + " elements, expected " +
                        std::to_string(expected));
  }
}

void Call::expectLength(const I32Arg& a, size_t expected, const char* name) const {
  if (a.length != expected) {
    throw ArgumentError(std::string(name) + " has " + std::to_string(a.length) + " elements, expected " +
                        std::to_string(expected));
  }
}

void Call::expectLength(const U16Arg& a, size_t expected, const char* name) const {
  if (a.length != expected) {
    throw ArgumentError(std::string(name) + " has " + std::to_string(a.length) + " elements, expected " +
                        std::to_string(expected));
  }
}

void Call::expectLength(const StorageArg& a, size_t expected, const char* name) const {
  if (a.length != expected) {
    throw ArgumentError(std::string(name) + " has " + std::to_string(a.length) + " elements, expected " +
                        std::to_string(expected));
  }
}

void Call::fail(const std::string& reason) const {
  std::string msg = std::string("native ") + kernel_ + ": " + reason;
  if (!where_.empty()) msg += " (" + where_ + ")";
  throw Napi::Error::New(info_.Env(), msg);
}

std::string shapeText(const dims& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(d[i]);
  }
  return s + "]";
}

namespace {
// The scratch of one JS thread (an env's instance data): a few large ArrayBuffers that
// outputs are carved from, front to back, while a scope is open, and reused from the
// front when the outermost scope closes.
struct Scratch {
  static constexpr size_t kChunk = size_t{64} << 20;
  static constexpr size_t kLimit = size_t{2} << 30;
  std::vector<Napi::Reference<Napi::ArrayBuffer>> chunks;
  std::vector<size_t> sizes;
  size_t total = 0;
  size_t chunk = 0;
  size_t offset = 0;
  size_t used = 0;
  size_t peak = 0;
  int depth = 0;
  bool poison = false;

  // A view of n elements, or an empty value when the scratch is closed or full.
  template <typename T>
  bool take(Napi::Env env, size_t n, Napi::TypedArrayOf<T>* out) {
    if (depth == 0 || n == 0) return false;
    const size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
    while (chunk < chunks.size() && offset + bytes > sizes[chunk]) {
      ++chunk;
      offset = 0;
    }
    if (chunk == chunks.size()) {
      const size_t size = bytes > kChunk ? bytes : kChunk;
      if (total + size > kLimit) return false;
      Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, size);
      chunks.push_back(Napi::Persistent(ab));
      sizes.push_back(size);
      total += size;
    }
    *out = Napi::TypedArrayOf<T>::New(env, n, chunks[chunk].Value(), offset);
    offset += bytes;
    used += bytes;
    return true;
  }

  // A frame: where the scratch stood when it opened, and the scope depth it opened.
  struct Mark {
    size_t chunk, offset, used;
    int depth;
  };
  std::vector<Mark> frames;

  // With poison on, NaN over what was carved from (c0, o0) up to (c1, o1).
  void poisonRange(size_t c0, size_t o0, size_t c1, size_t o1) {
    if (!poison) return;
    for (size_t i = c0; i <= c1 && i < chunks.size(); ++i) {
      Napi::ArrayBuffer ab = chunks[i].Value();
      float* p = static_cast<float*>(ab.Data());
      const size_t begin = i == c0 ? o0 : 0, end = i == c1 ? o1 : sizes[i];
      std::fill(p + begin / sizeof(float), p + end / sizeof(float), std::numeric_limits<float>::quiet_NaN());
    }
  }

  // Back to (c, o) with `u` bytes in use: what was carved since is released.
  void moveTo(size_t c, size_t o, size_t u) {
    poisonRange(c, o, chunk, offset);
    if (used > peak) peak = used;
    chunk = c;
    offset = o;
    used = u;
  }

  void reset() { moveTo(0, 0, 0); }

  // Back to where the innermost frame opened.
  void rewind() {
    const Mark m = frames.back();
    frames.pop_back();
    moveTo(m.chunk, m.offset, m.used);
  }
};

Scratch& scratchOf(Napi::Env env) {
  Scratch* s = env.GetInstanceData<Scratch>();
  if (s == nullptr) {
    s = new Scratch();
    env.SetInstanceData<Scratch>(s);
  }
  return *s;
}
}  // namespace

void scratchOpen(Napi::Env env) { ++scratchOf(env).depth; }

void scratchClose(Napi::Env env) {
  Scratch& s = scratchOf(env);
  if (s.depth == 0) throw ArgumentError("no scratch scope is open");
  if (!s.frames.empty() && s.frames.back().depth == s.depth) {
    throw ArgumentError("the innermost scratch scope is a frame: close it with scratchFrameClose");
  }
  if (--s.depth == 0) s.reset();
}

void scratchFrameOpen(Napi::Env env) {
  Scratch& s = scratchOf(env);
  s.frames.push_back({s.chunk, s.offset, s.used, ++s.depth});
}

void scratchFrameClose(Napi::Env env) {
  Scratch& s = scratchOf(env);
  if (s.frames.empty() || s.frames.back().depth != s.depth) throw ArgumentError("the innermost scratch scope is not a frame");
  s.rewind();
  if (--s.depth == 0) s.reset();
}

void scratchRelease(Napi::Env env) {
  Scratch& s = scratchOf(env);
  if (s.depth != 0) throw ArgumentError("a scratch scope is still open");
  s.chunks.clear();
  s.sizes.clear();
  s.total = 0;
}

void scratchPoison(Napi::Env env, bool on) { scratchOf(env).poison = on; }

ScratchStats scratchStats(Napi::Env env) {
  const Scratch& s = scratchOf(env);
  return {s.total, s.peak, s.depth};
}

// napi_create_buffer hands out uninitialised memory, unlike napi_create_arraybuffer
// which zero-fills: the Float32Array is then a view over that Buffer's store.
// Inside a scratch scope the output is a view into the scratch instead.
Napi::Float32Array newF32(Napi::Env env, size_t n) {
  Napi::Float32Array view;
  if (scratchOf(env).take(env, n, &view)) return view;
  auto buf = Napi::Buffer<uint8_t>::New(env, n * sizeof(float));
  return Napi::Float32Array::New(env, n, buf.ArrayBuffer(), buf.ByteOffset());
}

Napi::Uint16Array newU16(Napi::Env env, size_t n) {
  Napi::Uint16Array view;
  if (scratchOf(env).take(env, n, &view)) return view;
  auto buf = Napi::Buffer<uint8_t>::New(env, n * sizeof(uint16_t));
  return Napi::Uint16Array::New(env, n, buf.ArrayBuffer(), buf.ByteOffset());
}

Napi::Int32Array newI32(Napi::Env env, size_t n) {
  auto buf = Napi::Buffer<uint8_t>::New(env, n * sizeof(int32_t));
  return Napi::Int32Array::New(env, n, buf.ArrayBuffer(), buf.ByteOffset());
}

float* data(Napi::Float32Array a) { return a.Data(); }
uint16_t* data(Napi::Uint16Array a) { return a.Data(); }

std::string cacheKey(std::initializer_list<int64_t> parts) {
  std::string key;
  key.reserve(parts.size() * 6);
  for (int64_t p : parts) {
    key += std::to_string(p);
    key += ',';
  }
  return key;
}

int64_t product(const dims& d) {
  int64_t p = 1;
  for (auto v : d) p *= v;
  return p;
}

tag layoutArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || info[i].IsUndefined()) return tag::nhwc;
  const std::string v = info[i].IsString() ? info[i].As<Napi::String>().Utf8Value() : "";
  if (v == "nhwc") return tag::nhwc;
  if (v == "nchw16c") return tag::nChw16c;
  throw ArgumentError("layout must be 'nhwc' or 'nchw16c'");
}

void checkChannels(tag layout, int64_t c, const char* what) {
  if (layout == tag::nChw16c && c % 16 != 0) {
    throw ArgumentError(std::string("layout 'nchw16c' needs channels in multiples of 16, ") + what + " has " +
                        std::to_string(c));
  }
}

void parallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& body) {
  if (n <= 0) return;
  const int threads = omp_get_max_threads();
  if (threads <= 1 || n <= grain) {
    body(0, n);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    const int nt = omp_get_num_threads();
    const int64_t chunk = (n + nt - 1) / nt;
    const int64_t begin = t * chunk;
    const int64_t end = begin + chunk < n ? begin + chunk : n;
    if (begin < end) body(begin, end);
  }
}

}  // namespace resnet
