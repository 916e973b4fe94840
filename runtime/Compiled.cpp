// Compiled.cpp — memory for a compiled function, and calling it.
#include "Compiled.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <unistd.h>

namespace nnc_rt {
namespace {

uint64_t gMemoryCap = 0; // 0: the physical memory

/// What allocate() takes for `elements`.
uint64_t allocationBytes(int64_t elements) {
  uint64_t n = static_cast<uint64_t>(std::max<int64_t>(elements, 1));
  if (n > (UINT64_MAX - 63) / 8)
    return UINT64_MAX;
  return (n * 8 + 63) / 64 * 64;
}

/// 64-byte aligned, zeroed memory for `elements` of 8 bytes at most.
void *allocate(int64_t elements) {
  size_t bytes = (static_cast<size_t>(std::max<int64_t>(elements, 1)) * 8 + 63) / 64 * 64;
  void *p = std::aligned_alloc(64, bytes);
  if (!p)
    throw std::bad_alloc();
  std::memset(p, 0, bytes);
  return p;
}

} // namespace

uint64_t memoryCap() {
  if (gMemoryCap != 0)
    return gMemoryCap;
  long pages = ::sysconf(_SC_PHYS_PAGES), pageSize = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || pageSize <= 0)
    return UINT64_MAX; // unknown: no cap
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(pageSize);
}

void setMemoryCap(uint64_t bytes) { gMemoryCap = bytes; }

uint64_t parseBytes(const std::string &text) {
  size_t end = 0;
  double v = 0;
  try {
    v = std::stod(text, &end);
  } catch (const std::exception &) {
    return 0;
  }
  std::string unit = text.substr(end);
  double scale = unit.empty() || unit == "B" ? 1
                 : unit == "K" || unit == "KiB" ? 1024.0
                 : unit == "M" || unit == "MiB" ? 1024.0 * 1024
                 : unit == "G" || unit == "GiB" ? 1024.0 * 1024 * 1024
                 : unit == "T" || unit == "TiB" ? 1024.0 * 1024 * 1024 * 1024
                                                : 0;
  double bytes = v * scale;
  if (!(bytes >= 1) || bytes > 1.8e19)
    return 0;
  return static_cast<uint64_t>(bytes);
}

const char *memoryCapOrigin() {
  return gMemoryCap != 0 ? "--max-memory" : "the machine's physical memory";
}

std::string bytesText(uint64_t bytes) {
  const char *units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024)
    return std::to_string(bytes) + " bytes";
  double v = static_cast<double>(bytes);
  int u = -1;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v,
                units[u]);
  return buf;
}

uint64_t runnerBytes(const std::vector<BufferSpec> &buffers, int64_t arenaElements,
                     int64_t capacity) {
  uint64_t total = arenaElements > 0 ? allocationBytes(arenaElements) : 0;
  for (const BufferSpec &b : buffers) {
    if (b.kind == BufferSpec::Kind::Temp)
      continue;
    uint64_t n = b.batched && capacity > 0 &&
                         static_cast<uint64_t>(b.perExample) >
                             static_cast<uint64_t>(INT64_MAX) / static_cast<uint64_t>(capacity)
                     ? UINT64_MAX
                     : allocationBytes(b.elements(capacity));
    if (n > UINT64_MAX - total)
      return UINT64_MAX;
    total += n;
  }
  return total;
}

std::string buffersOverCap(const std::string &model, int64_t batch, const std::string &detail,
                           const std::vector<std::pair<std::string, uint64_t>> &parts,
                           uint64_t &total) {
  total = 0;
  std::string list;
  for (const auto &[what, bytes] : parts) {
    total = total > UINT64_MAX - bytes ? UINT64_MAX : total + bytes;
    list += (list.empty() ? "" : ", ") + what + " " + bytesText(bytes);
  }
  if (total <= memoryCap())
    return "";
  return "model '" + model + "' needs " +
         (total == UINT64_MAX ? std::string("more than 2^64 bytes") : bytesText(total)) +
         " to run with batch " + std::to_string(batch) + " (" + detail + list +
         "), more than the " + bytesText(memoryCap()) + " nnc may use (" + memoryCapOrigin() +
         ")";
}

std::string buffersOverCapHint(const std::string &how) {
  std::string hint = "a smaller batch (" + how + ") or fewer parameters need less";
  if (std::string(memoryCapOrigin()) == "--max-memory")
    hint += "; --max-memory SIZE allows more";
  return hint;
}

Runner::Runner(std::vector<BufferSpec> buffers, int64_t arenaElements, int64_t capacity,
               StepFunction fn)
    : buffers_(std::move(buffers)), capacity_(capacity), fn_(fn) {
  float *arena = nullptr;
  if (arenaElements > 0) {
    arena = static_cast<float *>(allocate(arenaElements));
    owned_.push_back(arena);
  }
  for (const BufferSpec &b : buffers_) {
    if (b.kind == BufferSpec::Kind::Temp) {
      pointers_.push_back(arena + b.offset);
      continue;
    }
    void *p = allocate(b.elements(capacity_));
    owned_.push_back(p);
    pointers_.push_back(p);
    if (b.kind == BufferSpec::Kind::Cache && b.name == kStaleBuffer && !b.i64 &&
        b.elements(capacity_) == 1) {
      stale_ = static_cast<float *>(p);
      *stale_ = 1; // nothing computed yet
    }
  }
}

Runner::~Runner() {
  for (void *p : owned_)
    std::free(p);
}

int Runner::find(const std::string &name) const {
  for (size_t i = 0; i < buffers_.size(); ++i)
    if (buffers_[i].name == name && buffers_[i].kind != BufferSpec::Kind::Temp)
      return static_cast<int>(i);
  return -1;
}

float *Runner::data(const std::string &name) {
  int i = find(name);
  if (i < 0 || buffers_[static_cast<size_t>(i)].i64)
    return nullptr;
  if (stale_ != nullptr && buffers_[static_cast<size_t>(i)].kind == BufferSpec::Kind::Param)
    *stale_ = 1; // the caller may write it: what the caches hold may be old
  return static_cast<float *>(pointers_[static_cast<size_t>(i)]);
}

int64_t *Runner::labels(const std::string &name) {
  int i = find(name);
  if (i < 0 || !buffers_[static_cast<size_t>(i)].i64)
    return nullptr;
  return static_cast<int64_t *>(pointers_[static_cast<size_t>(i)]);
}

int64_t Runner::elements(const std::string &name, int64_t n) const {
  int i = find(name);
  return i < 0 ? 0 : buffers_[static_cast<size_t>(i)].elements(n);
}

void Runner::run(int64_t n) {
  if (n < 1 || n > capacity_)
    throw std::logic_error("internal error: batch of " + std::to_string(n) +
                           " for a function planned for " + std::to_string(capacity_));
  fn_(reinterpret_cast<float **>(pointers_.data()), n);
  for (size_t i = 0; i < buffers_.size(); ++i)
    if (int from = buffers_[i].updates; from >= 0)
      std::swap(pointers_[i], pointers_[static_cast<size_t>(from)]);
}

} // namespace nnc_rt
