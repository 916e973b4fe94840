// Random.h — counter-based random numbers: Philox4x32-10 (Salmon et al.,
// "Parallel Random Numbers: As Easy as 1, 2, 3", SC 2011).
//
// Every random number nnc uses is a pure function of (seed, stream, index):
// the seed from the .nn file, a stream naming the purpose (a parameter's
// initialization, one epoch's shuffle, one step's dropout mask), and the
// element's index. Nothing depends on the order numbers are drawn in, so
// results are the same on any number of threads, with or without
// prefetching, in the JIT and in emitted C++.
//
// C++17 and the standard library only: --emit-cpp copies this file.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace nnc_rt {

/// One Philox4x32-10 block: 4 random 32-bit words for counter `ctr` and `key`.
inline std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> ctr,
                                             std::array<uint32_t, 2> key) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = uint64_t(kM0) * ctr[0];
    uint64_t p1 = uint64_t(kM1) * ctr[2];
    ctr = {uint32_t(p1 >> 32) ^ ctr[1] ^ key[0], uint32_t(p1), uint32_t(p0 >> 32) ^ ctr[3] ^ key[1],
           uint32_t(p0)};
    key[0] += kW0;
    key[1] += kW1;
  }
  return ctr;
}

/// A stream name as a 64-bit number (FNV-1a), e.g. of "init/fc1.weight".
inline uint64_t streamId(std::string_view name) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : name) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

/// The random 32-bit word number `index` of stream `stream` under `seed`.
inline uint32_t randomBits(uint64_t seed, uint64_t stream, uint64_t index) {
  std::array<uint32_t, 4> block = philox4x32_10(
      {uint32_t(index >> 2), uint32_t(index >> 34), uint32_t(stream), uint32_t(stream >> 32)},
      {uint32_t(seed), uint32_t(seed >> 32)});
  return block[index & 3];
}

/// A float in [0, 1) with 24 random bits: exactly representable, never 1.
inline float uniform01(uint64_t seed, uint64_t stream, uint64_t index) {
  return float(randomBits(seed, stream, index) >> 8) * (1.0f / 16777216.0f);
}

/// A float uniform in [low, high).
inline float uniformIn(uint64_t seed, uint64_t stream, uint64_t index, float low, float high) {
  return low + (high - low) * uniform01(seed, stream, index);
}

} // namespace nnc_rt

/// uniform01 with a C ABI, for compiled loops (RandomC.cpp).
extern "C" float nnc_uniform01(uint64_t seed, uint64_t stream, uint64_t index) noexcept;
