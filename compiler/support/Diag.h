// Diag.h — diagnostics for users: `file:line:col: error: message`, the source
// line, a caret under the culprit, and hints.
//
// A user's mistake is always reported through Diag and never through an
// assert or an exception that escapes to the user. After `kMaxErrors` errors
// Diag throws DiagLimitReached, which the driver catches, so that a file full
// of mistakes is answered quickly.
#pragma once

#include "support/Source.h"

#include <ostream>
#include <set>
#include <tuple>
#include <stdexcept>
#include <string>
#include <vector>

namespace nnc {

enum class Severity { Error, Warning, Note };

/// One diagnostic, with optional hints (`= hint: …`) and notes pointing
/// elsewhere in the source (`note: first defined here`).
struct Diagnostic {
  Severity severity = Severity::Error;
  SourceLoc loc;
  std::string message;
  std::vector<std::string> hints;
  struct Note {
    SourceLoc loc;
    std::string message;
  };
  std::vector<Note> notes;
};

/// Thrown by Diag::report once too many errors have been reported.
struct DiagLimitReached : std::runtime_error {
  DiagLimitReached() : std::runtime_error("too many errors") {}
};

/// Collects and prints diagnostics as they are reported.
class Diag {
public:
  static constexpr int kMaxErrors = 20;

  Diag(const SourceManager &sources, std::ostream &out, bool color = false)
      : sources_(sources), out_(out), color_(color) {}

  /// Prints `d` at once. Throws DiagLimitReached after the kMaxErrors-th error.
  void report(const Diagnostic &reported);
  /// Shorthand for an error with an optional hint.
  void error(SourceLoc loc, std::string message, std::string hint = {});
  void warning(SourceLoc loc, std::string message, std::string hint = {});
  /// An error that has no place in a source file (`nnc: error: …`).
  void errorNoLoc(std::string message, std::string hint = {});

  /// While deferring, diagnostics are collected instead of printed, and
  /// flush() prints them sorted by location, so that a pass that checks
  /// things out of source order still reports top to bottom.
  void defer() { deferring_ = true; }
  void flush();

  /// Notes added to every diagnostic reported until popped, innermost
  /// last: "in block 'residual' used here" while a block is expanded.
  void pushContext(Diagnostic::Note note) { context_.push_back(std::move(note)); }
  void popContext() { context_.pop_back(); }

  int errorCount() const { return errors_; }
  int warningCount() const { return warnings_; }
  bool hasErrors() const { return errors_ > 0; }

private:
  void print(const Diagnostic &d);
  void printLocated(Severity severity, SourceLoc loc, const std::string &message);

  const SourceManager &sources_;
  std::ostream &out_;
  bool color_;
  int errors_ = 0;
  int warnings_ = 0;
  bool deferring_ = false;
  std::vector<Diagnostic::Note> context_;
  /// (file, line, column, message) of each error so far, to drop repeats
  /// (an error inside a block used twice is the same error).
  std::set<std::tuple<uint32_t, uint32_t, uint32_t, std::string>> seen_;
  std::vector<Diagnostic> deferred_;
};

/// The closest of `candidates` to `word` by edit distance, or "" when none is
/// close enough to be a plausible typo.
std::string closestMatch(const std::string &word, const std::vector<std::string> &candidates);

/// `did you mean 'x'?` for the closest candidate, or "".
std::string didYouMean(const std::string &word, const std::vector<std::string> &candidates);

} // namespace nnc
