// Diag.cpp — printing diagnostics with a source excerpt and a caret line.
#include "support/Diag.h"

#include <algorithm>
#include <tuple>

namespace nnc {
namespace {

constexpr const char *kBold = "\033[1m";
constexpr const char *kRed = "\033[1;31m";
constexpr const char *kMagenta = "\033[1;35m";
constexpr const char *kCyan = "\033[1;36m";
constexpr const char *kGreen = "\033[1;32m";
constexpr const char *kReset = "\033[0m";

/// Longest stretch of a source line shown in an excerpt, in code points.
constexpr size_t kWindow = 100;

/// Size in bytes of the UTF-8 sequence starting at `line[i]`, or 0 if it
/// is not valid UTF-8.
size_t sequenceLength(std::string_view line, size_t i) {
  unsigned char c = static_cast<unsigned char>(line[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || i + n > line.size())
    return 0;
  for (size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(line[i + k]) & 0xC0) != 0x80)
      return 0;
  return n;
}

/// The printable cells [begin, end) of `line`, one per code point (as the
/// lexer counts columns): a tab becomes one space and anything unprintable
/// or not valid UTF-8 becomes '?', so that the caret always lines up. Only
/// the cells asked for are built, so a 10 MB line costs one pass.
std::string displayCells(std::string_view line, size_t begin, size_t end) {
  std::string out;
  size_t cell = 0;
  for (size_t i = 0; i < line.size() && cell < end; ++cell) {
    size_t n = sequenceLength(line, i);
    if (cell >= begin) {
      unsigned char c = static_cast<unsigned char>(line[i]);
      if (n == 0 || c < 0x20 || c == 0x7f)
        out += c == '\t' ? ' ' : '?';
      else
        out.append(line.substr(i, n));
    }
    i += n == 0 ? 1 : n;
  }
  return out;
}

size_t cellCount(std::string_view line) {
  size_t cells = 0;
  for (size_t i = 0; i < line.size(); ++cells) {
    size_t n = sequenceLength(line, i);
    i += n == 0 ? 1 : n;
  }
  return cells;
}

const char *severityName(Severity s) {
  switch (s) {
  case Severity::Error:
    return "error";
  case Severity::Warning:
    return "warning";
  case Severity::Note:
    return "note";
  }
  return "error";
}

const char *severityColor(Severity s) {
  switch (s) {
  case Severity::Error:
    return kRed;
  case Severity::Warning:
    return kMagenta;
  case Severity::Note:
    return kCyan;
  }
  return kRed;
}

} // namespace

void Diag::printLocated(Severity severity, SourceLoc loc, const std::string &message) {
  auto paint = [&](const char *code) { return color_ ? code : ""; };
  if (!loc.valid()) {
    out_ << paint(kBold) << "nnc: " << paint(kReset) << paint(severityColor(severity))
         << severityName(severity) << ": " << paint(kReset) << paint(kBold) << message
         << paint(kReset) << "\n";
    return;
  }
  const SourceFile &file = sources_.file(loc.file);
  out_ << paint(kBold) << file.path() << ":" << loc.line << ":" << loc.column << ": "
       << paint(kReset) << paint(severityColor(severity)) << severityName(severity) << ": "
       << paint(kReset) << paint(kBold) << message << paint(kReset) << "\n";

  std::string_view text = file.line(loc.line);
  size_t cells = cellCount(text);
  size_t caret = std::min<size_t>(loc.column - 1, cells);
  size_t length = std::max<uint32_t>(1, loc.length);
  // Show a window of a long line around the caret.
  size_t begin = 0, end = cells;
  if (cells > kWindow) {
    begin = caret > kWindow / 2 ? caret - kWindow / 2 : 0;
    end = std::min(cells, begin + kWindow);
  }
  std::string gutter = std::to_string(loc.line);
  std::string pad(std::max<size_t>(gutter.size(), 4), ' ');
  gutter.insert(0, pad.size() - gutter.size(), ' ');

  out_ << " " << gutter << " | " << (begin > 0 ? "..." : "") << displayCells(text, begin, end)
       << (end < cells ? "..." : "") << "\n";

  out_ << " " << pad << " | " << (begin > 0 ? "   " : "");
  for (size_t i = begin; i < caret; ++i)
    out_ << ' ';
  size_t visible = caret < end ? std::min(length, end - caret) : 1;
  out_ << paint(kGreen) << '^' << std::string(visible - 1, '~') << paint(kReset) << "\n";
}

void Diag::print(const Diagnostic &d) {
  printLocated(d.severity, d.loc, d.message);
  // Hints line up under the excerpt's '|'.
  std::string indent = "  ";
  if (d.loc.valid())
    indent = std::string(std::max<size_t>(std::to_string(d.loc.line).size(), 4) + 2, ' ') + "= ";
  for (const std::string &hint : d.hints)
    out_ << indent << (color_ ? kCyan : "") << "hint: " << (color_ ? kReset : "") << hint << "\n";
  for (const Diagnostic::Note &note : d.notes)
    printLocated(Severity::Note, note.loc, note.message);
}

void Diag::flush() {
  std::stable_sort(deferred_.begin(), deferred_.end(), [](const Diagnostic &a, const Diagnostic &b) {
    return std::tie(a.loc.file, a.loc.line, a.loc.column) <
           std::tie(b.loc.file, b.loc.line, b.loc.column);
  });
  for (const Diagnostic &d : deferred_)
    print(d);
  deferred_.clear();
  deferring_ = false;
}

void Diag::report(const Diagnostic &reported) {
  if (reported.loc.valid() &&
      !seen_.emplace(reported.loc.file, reported.loc.line, reported.loc.column, reported.message)
           .second)
    return;
  Diagnostic d = reported;
  // The innermost uses say the most; past a few, one line says how many more.
  constexpr size_t kShown = 3;
  size_t shown = 0;
  for (auto it = context_.rbegin(); it != context_.rend() && shown < kShown; ++it, ++shown)
    d.notes.push_back(*it);
  if (context_.size() > kShown) {
    Diagnostic::Note outermost = context_.front();
    if (size_t between = context_.size() - kShown - 1; between > 0)
      outermost.message += " (and " + std::to_string(between) + " uses in between)";
    d.notes.push_back(outermost);
  }
  if (deferring_)
    deferred_.push_back(d);
  else
    print(d);
  if (d.severity == Severity::Error) {
    if (++errors_ >= kMaxErrors) {
      flush();
      out_ << "nnc: stopping after " << kMaxErrors << " errors\n";
      throw DiagLimitReached();
    }
  } else if (d.severity == Severity::Warning) {
    ++warnings_;
  }
}

void Diag::error(SourceLoc loc, std::string message, std::string hint) {
  Diagnostic d{Severity::Error, loc, std::move(message), {}, {}};
  if (!hint.empty())
    d.hints.push_back(std::move(hint));
  report(d);
}

void Diag::warning(SourceLoc loc, std::string message, std::string hint) {
  Diagnostic d{Severity::Warning, loc, std::move(message), {}, {}};
  if (!hint.empty())
    d.hints.push_back(std::move(hint));
  report(d);
}

void Diag::errorNoLoc(std::string message, std::string hint) {
  error(SourceLoc{}, std::move(message), std::move(hint));
}

namespace {

/// Optimal string alignment distance: insertions, deletions, substitutions
/// and transpositions of neighbours ("rleu" is one edit from "relu").
size_t editDistance(const std::string &a, const std::string &b) {
  size_t n = a.size(), m = b.size();
  std::vector<size_t> d((n + 1) * (m + 1));
  auto at = [&](size_t i, size_t j) -> size_t & { return d[i * (m + 1) + j]; };
  for (size_t i = 0; i <= n; ++i)
    at(i, 0) = i;
  for (size_t j = 0; j <= m; ++j)
    at(0, j) = j;
  for (size_t i = 1; i <= n; ++i)
    for (size_t j = 1; j <= m; ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      at(i, j) = std::min({at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        at(i, j) = std::min(at(i, j), at(i - 2, j - 2) + 1);
    }
  return at(n, m);
}

} // namespace

std::string closestMatch(const std::string &word, const std::vector<std::string> &candidates) {
  std::string best;
  size_t bestDistance = 0;
  // Allow about one edit per three letters, and at least one.
  size_t limit = std::max<size_t>(1, word.size() / 3);
  if (word.size() > 64)
    return {};
  for (const std::string &c : candidates) {
    size_t d = editDistance(word, c);
    if (d <= limit && (best.empty() || d < bestDistance)) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

std::string didYouMean(const std::string &word, const std::vector<std::string> &candidates) {
  std::string best = closestMatch(word, candidates);
  return best.empty() ? std::string() : "did you mean '" + best + "'?";
}

} // namespace nnc
