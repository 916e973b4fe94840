// Compiled.h — a compiled function with the memory it runs in: its inputs,
// parameters and state (with a second copy for their next values), outputs,
// and one arena for every temporary, all allocated once.
//
// The JIT (compiler/codegen/Runner.h describes its functions this way) and
// emitted programs (a generated table) share it.
//
// C++17 and the standard library only: --emit-cpp copies this file.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace nnc_rt {

// The scalar and label buffers of train_step, by name.
inline const char *const kLabelsBuffer = "@labels";
inline const char *const kLossBuffer = "@loss";
inline const char *const kStepBuffer = "@step";
/// grad_step's: the first example of this process's share of the batch
/// (data-parallel training), which offsets dropout's mask
inline const char *const kFirstExampleBuffer = "@first_example";
inline const char *const kStepsPerEpochBuffer = "@steps_per_epoch";
inline const char *const kBaseLrBuffer = "@base_lr";
inline const char *const kLrBuffer = "@lr";
/// A function's cache flag (a Cache buffer of one number): nonzero when
/// its other Cache buffers must be computed again. A Runner sets it when
/// it is made and whenever data() hands out a parameter (which may then be
/// written); the function clears it.
inline const char *const kStaleBuffer = "@stale";

/// The most memory a run lets itself take for one thing it sizes before
/// allocating (the compiled functions' buffers, a data file), in bytes:
/// what setMemoryCap set (nnc's --max-memory), otherwise the machine's
/// physical memory.
uint64_t memoryCap();
/// Sets the cap; 0 restores the default (the physical memory).
void setMemoryCap(uint64_t bytes);
/// What the cap is: "the machine's physical memory" or "--max-memory".
const char *memoryCapOrigin();
/// "512M", "2G", "1.5G", "1000000": bytes (K, M, G, T: powers of 1024);
/// 0 when it is none of these (--max-memory's argument).
uint64_t parseBytes(const std::string &text);
/// "1.50 GiB", "12.0 MiB", "512 bytes".
std::string bytesText(uint64_t bytes);

struct BufferSpec;
/// The bytes a Runner allocates for `buffers` and an arena of
/// `arenaElements` at batch `capacity` (UINT64_MAX if it does not fit).
uint64_t runnerBytes(const std::vector<BufferSpec> &buffers, int64_t arenaElements,
                     int64_t capacity);
/// The memory cap's check of a compiled model's buffers, given in `parts`
/// as (what, bytes): their sum (UINT64_MAX past 2^64) in `total`, and ""
/// when it fits under the cap, else the refusal: "model 'Net' needs 4.64 MiB
/// to run with batch 64 (`detail`the training step's buffers 3.35 MiB,
/// prediction's 1.29 MiB), more than the 1.00 MiB nnc may use (--max-memory)".
std::string buffersOverCap(const std::string &model, int64_t batch, const std::string &detail,
                           const std::vector<std::pair<std::string, uint64_t>> &parts,
                           uint64_t &total);

/// The hint under buffersOverCap's refusal: what needs less memory (a
/// smaller batch, set as `how`, e.g. "--batch N"; fewer parameters) or allows more
/// (--max-memory, when it set the cap).
std::string buffersOverCapHint(const std::string &how);
/// A compiled step or prediction: `void f(float **buffers, int64_t N)`.
using StepFunction = void (*)(float **buffers, int64_t batch);

/// One buffer of a compiled function, in the order it receives them.
struct BufferSpec {
  /// Cache: kept between calls, computed by the function from its
  /// parameters when kStaleBuffer says so (never state, never saved).
  enum class Kind { Input, Param, Output, Temp, Cache };
  std::string name;
  Kind kind = Kind::Input;
  int64_t perExample = 0; ///< elements, times N when batched
  bool batched = false;
  bool i64 = false;       ///< labels; every other buffer holds f32
  int64_t offset = -1;    ///< Temp: where it lives in the arena, in elements
  int updates = -1;       ///< Output: the Param it is the next value of

  int64_t elements(int64_t n) const { return batched ? perExample * n : perExample; }
};

class Runner {
public:
  /// Allocates every buffer (zeroed, 64-byte aligned) for batches up to
  /// `capacity`, temporaries in one arena of `arenaElements`.
  Runner(std::vector<BufferSpec> buffers, int64_t arenaElements, int64_t capacity,
         StepFunction fn);
  ~Runner();
  Runner(const Runner &) = delete;
  Runner &operator=(const Runner &) = delete;

  /// The f32 buffer called `name` (an input, parameter, state, output or
  /// cache), or null. A parameter's pointer changes after each run (see
  /// run()); handing one out marks the function's caches stale.
  float *data(const std::string &name);
  /// The i64 buffer called `name` (labels), or null.
  int64_t *labels(const std::string &name);
  /// Elements of buffer `name` for a batch of `n`; 0 if there is none.
  int64_t elements(const std::string &name, int64_t n) const;
  int64_t capacity() const { return capacity_; }

  /// Runs on a batch of `n` (1 <= n <= capacity). Afterwards each parameter
  /// or state buffer and the output holding its next value trade places, so
  /// data(parameter) is the updated value.
  void run(int64_t n);

private:
  int find(const std::string &name) const;

  std::vector<BufferSpec> buffers_;
  int64_t capacity_;
  StepFunction fn_;
  float *stale_ = nullptr;       ///< the cache flag, if the function has caches
  std::vector<void *> pointers_; ///< what the function receives
  std::vector<void *> owned_;    ///< every allocation, freed at the end
};

} // namespace nnc_rt
