// fma_peak.cpp — the machine's measured single-precision FMA peak, for
// bench/run.sh's "% of peak": T threads each run 12 independent chains of
// fused multiply-adds on the widest vectors the CPU has (16-lane AVX-512
// where the compiler targets it, else 8-lane AVX2; 12 chains cover the FMA
// latency on two ports) for about half a second; prints GFLOP/s (2 flops per
// lane per FMA) for each thread count given, the best of 3 tries.
//
//   g++ -O2 -march=native -pthread bench/fma_peak.cpp -o fma_peak && ./fma_peak 1 2
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

#if defined(__AVX512F__)
using Vec = __m512;
constexpr int kLanes = 16;
inline Vec splat(float x) { return _mm512_set1_ps(x); }
inline Vec fmadd(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
inline Vec plus(Vec a, Vec b) { return _mm512_add_ps(a, b); }
inline void store(float *to, Vec v) { _mm512_storeu_ps(to, v); }
#elif defined(__AVX2__) && defined(__FMA__)
using Vec = __m256;
constexpr int kLanes = 8;
inline Vec splat(float x) { return _mm256_set1_ps(x); }
inline Vec fmadd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
inline Vec plus(Vec a, Vec b) { return _mm256_add_ps(a, b); }
inline void store(float *to, Vec v) { _mm256_storeu_ps(to, v); }
#else
#error "fma_peak needs AVX2 and FMA (or AVX-512): build with -march=native on such a CPU"
#endif

constexpr int kChains = 12;
constexpr long kIterations = 40'000'000;

float chains(float seed) {
  Vec acc[kChains];
  for (int c = 0; c < kChains; ++c)
    acc[c] = splat(seed + static_cast<float>(c));
  const Vec a = splat(0.999999f), b = splat(1e-7f);
  for (long i = 0; i < kIterations; ++i) {
#pragma GCC unroll 12
    for (int c = 0; c < kChains; ++c)
      acc[c] = fmadd(acc[c], a, b);
  }
  Vec sum = acc[0];
  for (int c = 1; c < kChains; ++c)
    sum = plus(sum, acc[c]);
  float out[kLanes];
  store(out, sum);
  return out[0];
}

double gflops(int threads) {
  std::vector<std::thread> pool;
  std::vector<float> sink(static_cast<size_t>(threads));
  auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&sink, t] { sink[static_cast<size_t>(t)] = chains(static_cast<float>(t)); });
  for (std::thread &t : pool)
    t.join();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (sink[0] == 12345.0f) // keeps the work
    std::puts("");
  return 2.0 * kLanes * kChains * static_cast<double>(kIterations) * threads / seconds / 1e9;
}

} // namespace

int main(int argc, char **argv) {
  for (int i = 1; i < argc; ++i) {
    int threads = std::atoi(argv[i]);
    if (threads < 1) {
      std::fprintf(stderr, "fma_peak: '%s' is not a thread count\n", argv[i]);
      return 2;
    }
    double best = 0;
    for (int k = 0; k < 3; ++k)
      best = std::max(best, gflops(threads));
    std::printf("%d %.1f %d\n", threads, best, kLanes);
  }
  return 0;
}
