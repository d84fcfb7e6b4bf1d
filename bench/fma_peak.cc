// The machine's float32 peak, the yardstick for the GFLOP/s in BENCHMARKS.md: every
// thread runs 16 independent chains of 512-bit FMAs (enough to cover the FMA latency on
// two pipes), all in registers.
//
//   g++ -O2 -mavx512f -pthread bench/fma_peak.cc -o /tmp/fma_peak && /tmp/fma_peak 2
//
// AVX-512 CPUs only; prints GFLOP/s for the given number of threads (default 2).
#include <immintrin.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#define CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
#define DECLARE(i) __m512 a##i = _mm512_set1_ps(i);
#define STEP(i) a##i = _mm512_fmadd_ps(a##i, b, c);
#define SUM(i) +_mm512_reduce_add_ps(a##i)

static float chains(long iters) {
  const __m512 b = _mm512_set1_ps(1.0000001f);
  const __m512 c = _mm512_set1_ps(1e-7f);
  CHAINS(DECLARE)
  for (long k = 0; k < iters; k++) {
    CHAINS(STEP)
  }
  return 0 CHAINS(SUM);
}

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const long iters = 100000000;
  std::vector<float> sums(threads);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; t++) pool.emplace_back([&sums, t, iters] { sums[t] = chains(iters); });
  for (auto& t : pool) t.join();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double flops = 2.0 * 16 * 16 * static_cast<double>(iters) * threads;
  float check = 0;
  for (float v : sums) check += v;
  std::printf("%d thread(s): %.1f GFLOP/s float32 FMA (%.2f s; checksum %g)\n", threads, flops / s / 1e9, s, check);
  return 0;
}
