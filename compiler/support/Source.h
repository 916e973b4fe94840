// Source.h — source files held in memory, and locations within them.
//
// Every AST node and every diagnostic carries a SourceLoc. Columns count
// Unicode code points from 1, as editors do; `length` is the number of code
// points a caret line underlines.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace nnc {

/// A position in a source file managed by a SourceManager.
struct SourceLoc {
  uint32_t file = 0;   ///< index into the SourceManager; 0 = no location
  uint32_t line = 0;   ///< 1-based
  uint32_t column = 0; ///< 1-based, in code points
  uint32_t length = 1; ///< code points to underline

  bool valid() const { return file != 0 && line != 0; }
};

/// One source text and the byte offset of each of its lines.
class SourceFile {
public:
  SourceFile(std::string path, std::string text);

  const std::string &path() const { return path_; }
  const std::string &text() const { return text_; }
  size_t lineCount() const { return lineStarts_.size(); }
  /// The text of 1-based line `line`, without its line terminator.
  std::string_view line(uint32_t line) const;

private:
  std::string path_;
  std::string text_;
  std::vector<size_t> lineStarts_;
};

/// Owns every source text a compilation (or a REPL session) has seen.
class SourceManager {
public:
  /// Adds a file and returns its id (never 0).
  uint32_t add(std::string path, std::string text);
  const SourceFile &file(uint32_t id) const { return *files_.at(id - 1); }

private:
  std::vector<std::unique_ptr<SourceFile>> files_;
};

} // namespace nnc
