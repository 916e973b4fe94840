// RandomTest.cpp — the runtime's counter-based RNG.
#include "Random.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <set>

using namespace nnc_rt;

TEST_CASE("Philox4x32-10 matches Random123's known-answer vectors") {
  // Random123, tests/kat_vectors: counter, key, result.
  using Block = std::array<uint32_t, 4>;
  CHECK(philox4x32_10({0, 0, 0, 0}, {0, 0}) ==
        Block{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
  CHECK(philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}) ==
        Block{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
  CHECK(philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
                      {0xa4093822, 0x299f31d0}) ==
        Block{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1});
}

TEST_CASE("random numbers depend on seed, stream and index only") {
  uint64_t s = streamId("init/fc1.weight");
  CHECK(randomBits(42, s, 7) == randomBits(42, s, 7));
  CHECK(randomBits(42, s, 7) != randomBits(43, s, 7));
  CHECK(randomBits(42, s, 7) != randomBits(42, streamId("init/fc2.weight"), 7));
  std::set<uint32_t> seen;
  for (uint64_t i = 0; i < 1000; ++i)
    seen.insert(randomBits(1, s, i));
  CHECK(seen.size() == 1000);
  // Indices past 2^32 are distinct too.
  CHECK(randomBits(1, s, 5) != randomBits(1, s, 5 + (uint64_t(1) << 34)));
}

TEST_CASE("uniform01 stays below 1 and at or above 0, with the right mean and variance") {
  double sum = 0, sumSquares = 0;
  const int n = 200000;
  int outside = 0;
  for (int i = 0; i < n; ++i) {
    float u = uniform01(3, streamId("test"), uint64_t(i));
    outside += u < 0.0f || u >= 1.0f;
    sum += u;
    sumSquares += double(u) * u;
  }
  CHECK(outside == 0);
  double mean = sum / n, variance = sumSquares / n - mean * mean;
  // Standard errors: 1/sqrt(12 n) ≈ 0.00065 for the mean; allow 5 of them.
  CHECK(std::abs(mean - 0.5) < 0.0033);
  CHECK(std::abs(variance - 1.0 / 12) < 0.001);
  CHECK(streamId("") == 0xcbf29ce484222325ull);
}
