// Plot.h — training curves as a self-contained SVG, for `--plot curves.svg`.
//
// Two panels side by side: loss per epoch on the left, accuracy per epoch
// in percent on the right. Train, validation and test are lines of their
// own colour (blue, orange, green) with markers of their own shape (circle,
// square, triangle), named in one legend under the title. Axes have ticks
// at round values (steps of 1, 2 or 5 times a power of ten) that cover the
// data, and labels. Only what was recorded is drawn: a split with no
// finite value in a panel has no line there (and no legend entry if it has
// none anywhere); NaN and infinite values are skipped, breaking the line
// where they stand, and a point with no neighbour still gets its marker,
// so one epoch is one point. A constant series gets an axis of non-zero
// range around its value.
//
// The output is valid XML (the title is escaped; control characters and
// invalid UTF-8 in it are replaced) and deterministic: the same records
// and title give the same bytes, numbers printed with fixed precision and
// independent of the C locale. It is written atomically: to a temporary
// file beside PATH, then renamed over it, so a reader never sees half a
// plot and a failed write leaves any old PATH as it was.
//
// C++17 and the standard library only (POSIX for the atomic write).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace nnc_rt {

/// What was measured on one split (train, validation or test) in one epoch.
struct SplitMetrics {
  std::optional<double> loss;
  std::optional<double> accuracy; ///< the fraction classified correctly, in [0, 1]
};

/// One epoch of training. A split that was not evaluated (no validation
/// set, the test set not used) leaves its values empty.
struct EpochRecord {
  int64_t epoch = 0; ///< as the run numbers it (1 for the first, usually)
  SplitMetrics train, val, test;
};

/// The SVG text of the curves. `records` must be non-empty with strictly
/// increasing epochs (writeCurvesSvg checks this; here a violation gives
/// a plot of what is there).
std::string curvesSvg(const std::vector<EpochRecord> &records, const std::string &title);

/// Writes curvesSvg(records, title) to `path` atomically. Returns false and
/// sets `error` ("PATH: what is wrong") if `records` is empty, its epochs
/// do not increase, or the file cannot be written.
bool writeCurvesSvg(const std::string &path, const std::vector<EpochRecord> &records,
                    const std::string &title, std::string &error);

/// Round tick values covering [lo, hi]: about `target` steps of 1, 2 or 5
/// times a power of ten (never less than `minStep`), from the largest
/// multiple of the step at or below lo to the smallest at or above hi.
/// lo < hi, both finite. Used for both axes; exposed for tests.
std::vector<double> niceTicks(double lo, double hi, int target = 5, double minStep = 0.0);

} // namespace nnc_rt
