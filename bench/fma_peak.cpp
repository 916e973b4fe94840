// fma_peak.cpp — the machine's measured single-precision FMA peak, for
// bench/run.sh's "% of peak": T threads each run 12 independent chains of
// 8-lane AVX2 fused multiply-adds (enough to cover the FMA latency on two
// ports) for about half a second; prints GFLOP/s (2 flops per lane per FMA)
// for each thread count given, the best of 3 tries.
//
//   g++ -O2 -mavx2 -mfma -pthread bench/fma_peak.cpp -o fma_peak && ./fma_peak 1 2
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

constexpr int kChains = 12;
constexpr long kIterations = 40'000'000;

float chains(float seed) {
  __m256 acc[kChains];
  for (int c = 0; c < kChains; ++c)
    acc[c] = _mm256_set1_ps(seed + static_cast<float>(c));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (long i = 0; i < kIterations; ++i) {
#pragma GCC unroll 12
    for (int c = 0; c < kChains; ++c)
      acc[c] = _mm256_fmadd_ps(acc[c], a, b);
  }
  __m256 sum = acc[0];
  for (int c = 1; c < kChains; ++c)
    sum = _mm256_add_ps(sum, acc[c]);
  float out[8];
  _mm256_storeu_ps(out, sum);
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
  return 2.0 * 8 * kChains * static_cast<double>(kIterations) * threads / seconds / 1e9;
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
    std::printf("%d %.1f\n", threads, best);
  }
  return 0;
}
