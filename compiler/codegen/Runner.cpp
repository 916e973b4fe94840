// Runner.cpp — a loop-IR function's buffers as the runtime describes them.
#include "codegen/Runner.h"

namespace nnc {

std::vector<nnc_rt::BufferSpec> bufferSpecs(const loops::Function &f) {
  std::vector<nnc_rt::BufferSpec> specs;
  for (const loops::Buffer &b : f.buffers) {
    nnc_rt::BufferSpec s;
    s.name = b.name;
    switch (b.kind) {
    case loops::BufferKind::Input:
      s.kind = nnc_rt::BufferSpec::Kind::Input;
      break;
    case loops::BufferKind::Param:
      s.kind = nnc_rt::BufferSpec::Kind::Param;
      break;
    case loops::BufferKind::Output:
      s.kind = nnc_rt::BufferSpec::Kind::Output;
      break;
    case loops::BufferKind::Temp:
      s.kind = nnc_rt::BufferSpec::Kind::Temp;
      break;
    case loops::BufferKind::Cache:
      s.kind = nnc_rt::BufferSpec::Kind::Cache;
      break;
    }
    s.perExample = b.perExample;
    s.batched = b.batched;
    s.i64 = b.type == loops::Type::I64;
    s.offset = b.offset;
    s.updates = b.updates;
    specs.push_back(std::move(s));
  }
  return specs;
}

} // namespace nnc
