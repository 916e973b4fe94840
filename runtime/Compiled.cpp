// Compiled.cpp — memory for a compiled function, and calling it.
#include "Compiled.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

namespace nnc_rt {
namespace {

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
