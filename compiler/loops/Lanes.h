// Lanes.h — the rules both backends (codegen/JIT.cpp, codegen/EmitCpp.cpp)
// use for `lanes` loops: which become straight-line vector code, and how an
// index moves from one lane to the next.
#pragma once

#include "loops/LoopIR.h"

#include <cstdint>
#include <set>

namespace nnc::loops {

/// Which `lanes` loops the backends write as vector code, and how an index
/// moves from one lane to the next. The JIT and the C++ emitter both ask
/// it, so that they agree on which loops are vectors (a lanes loop that is
/// not runs as an ordinary loop in both).
class LaneRules {
public:
  explicit LaneRules(const Function &f) : f_(f) {}

  int var = -1; ///< the lane variable of the loop being checked or emitted

  /// How an i64 index changes from one lane to the next: 0 (the same in
  /// every lane), 1 (consecutive), or -1 (anything else).
  int64_t step(const Expr &e) const;

  /// Whether lanes loop `s` becomes vector code: its extent is a constant
  /// from 2 to 256 and its body has only arithmetic, loads and stores whose
  /// index rises by one per lane or stays put, and inner loops that do not
  /// depend on the lane.
  bool supported(const Stmt &s);

private:
  bool allowed(const Expr &e, int laneVar);
  bool allowed(const Stmt &s, int laneVar);
  const Function &f_;
  std::set<int> locals_;
};

} // namespace nnc::loops
