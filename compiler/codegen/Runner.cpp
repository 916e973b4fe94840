// Runner.cpp — memory for a compiled function, and calling it.
#include "codegen/Runner.h"

#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace nnc {
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

Runner::Runner(loops::Function f, CompiledFunction fn) : f_(std::move(f)), fn_(fn) {
  float *arena = nullptr;
  if (f_.arenaElements > 0) {
    arena = static_cast<float *>(allocate(f_.arenaElements));
    owned_.push_back(arena);
  }
  for (const loops::Buffer &b : f_.buffers) {
    if (b.kind == loops::BufferKind::Temp) {
      pointers_.push_back(arena + b.offset);
      continue;
    }
    void *p = allocate(b.elements(f_.capacity));
    owned_.push_back(p);
    pointers_.push_back(p);
  }
}

Runner::~Runner() {
  for (void *p : owned_)
    std::free(p);
}

int Runner::find(const std::string &name) const {
  for (size_t i = 0; i < f_.buffers.size(); ++i)
    if (f_.buffers[i].name == name && f_.buffers[i].kind != loops::BufferKind::Temp)
      return static_cast<int>(i);
  return -1;
}

float *Runner::data(const std::string &name) {
  int i = find(name);
  if (i < 0 || f_.buffers[static_cast<size_t>(i)].type != loops::Type::F32)
    return nullptr;
  return static_cast<float *>(pointers_[static_cast<size_t>(i)]);
}

int64_t *Runner::labels(const std::string &name) {
  int i = find(name);
  if (i < 0 || f_.buffers[static_cast<size_t>(i)].type != loops::Type::I64)
    return nullptr;
  return static_cast<int64_t *>(pointers_[static_cast<size_t>(i)]);
}

int64_t Runner::elements(const std::string &name, int64_t n) const {
  int i = find(name);
  return i < 0 ? 0 : f_.buffers[static_cast<size_t>(i)].elements(n);
}

void Runner::run(int64_t n) {
  if (n < 1 || n > f_.capacity)
    throw std::logic_error("internal error: batch of " + std::to_string(n) +
                           " for a function planned for " + std::to_string(f_.capacity));
  fn_(reinterpret_cast<float **>(pointers_.data()), n);
  for (size_t i = 0; i < f_.buffers.size(); ++i)
    if (int from = f_.buffers[i].updates; from >= 0)
      std::swap(pointers_[i], pointers_[static_cast<size_t>(from)]);
}

} // namespace nnc
