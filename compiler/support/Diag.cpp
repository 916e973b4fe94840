// Diag.cpp — printing diagnostics with a source excerpt and a caret line.
#include "support/Diag.h"

#include <algorithm>

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

/// Splits `line` into printable code points (as UTF-8 strings); tabs become
/// one space (ANTLR counts a tab as one column) and anything unprintable or
/// not valid UTF-8 becomes '?', so that the caret always lines up.
std::vector<std::string> displayCells(std::string_view line) {
  std::vector<std::string> cells;
  for (size_t i = 0; i < line.size();) {
    unsigned char c = static_cast<unsigned char>(line[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = n != 0 && i + n <= line.size();
    for (size_t k = 1; ok && k < n; ++k)
      ok = (static_cast<unsigned char>(line[i + k]) & 0xC0) == 0x80;
    if (!ok) {
      cells.emplace_back("?");
      ++i;
      continue;
    }
    if (c == '\t')
      cells.emplace_back(" ");
    else if (c < 0x20 || c == 0x7f)
      cells.emplace_back("?");
    else
      cells.emplace_back(line.substr(i, n));
    i += n;
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

  std::vector<std::string> cells = displayCells(file.line(loc.line));
  size_t caret = std::min<size_t>(loc.column - 1, cells.size());
  size_t length = std::max<uint32_t>(1, loc.length);
  // Show a window of a long line around the caret.
  size_t begin = 0, end = cells.size();
  if (cells.size() > kWindow) {
    begin = caret > kWindow / 2 ? caret - kWindow / 2 : 0;
    end = std::min(cells.size(), begin + kWindow);
  }
  std::string gutter = std::to_string(loc.line);
  std::string pad(std::max<size_t>(gutter.size(), 4), ' ');
  gutter.insert(0, pad.size() - gutter.size(), ' ');

  out_ << " " << gutter << " | " << (begin > 0 ? "..." : "");
  for (size_t i = begin; i < end; ++i)
    out_ << cells[i];
  out_ << (end < cells.size() ? "..." : "") << "\n";

  out_ << " " << pad << " | " << (begin > 0 ? "   " : "");
  for (size_t i = begin; i < caret; ++i)
    out_ << ' ';
  size_t visible = caret < end ? std::min(length, end - caret) : 1;
  out_ << paint(kGreen) << '^' << std::string(visible - 1, '~') << paint(kReset) << "\n";
}

void Diag::report(const Diagnostic &d) {
  printLocated(d.severity, d.loc, d.message);
  std::string pad(d.loc.valid() ? 6 : 2, ' ');
  if (!d.loc.valid() && !d.hints.empty())
    pad = "  ";
  for (const std::string &hint : d.hints)
    out_ << pad << (d.loc.valid() ? "= " : "") << (color_ ? kCyan : "") << "hint: "
         << (color_ ? kReset : "") << hint << "\n";
  for (const Diagnostic::Note &note : d.notes)
    printLocated(Severity::Note, note.loc, note.message);
  if (d.severity == Severity::Error) {
    if (++errors_ >= kMaxErrors) {
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

size_t editDistance(const std::string &a, const std::string &b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + cost});
      diagonal = up;
    }
  }
  return row[b.size()];
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
