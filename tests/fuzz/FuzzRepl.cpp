// FuzzRepl.cpp — libFuzzer target: the input as the lines of a REPL
// session (compiler/repl/Repl.cpp) read from a pipe: declarations, layer
// replacements, tensor expressions and commands, each checked and answered
// with the output going to a sink. The session runs with
// ReplOptions::fuzzing: nothing is JIT-compiled, run, read or written (so
// :train, :eval, :predict, :show, :save, :load and :emit llvm|cpp only say
// so, and tensor expressions stop at the loop IR), which keeps an input
// within milliseconds; those paths are left to the suite.
#include "repl/Repl.h"

#include <cstdint>
#include <iostream>
#include <sstream>
#include <streambuf>
#include <string>

namespace {

/// Swallows whatever is written to it.
class NullBuffer : public std::streambuf {
protected:
  int overflow(int c) override { return c == EOF ? 0 : c; }
  std::streamsize xsputn(const char *, std::streamsize n) override { return n; }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 64 * 1024)
    return 0; // a session typed by hand; longer inputs only slow the search
  static NullBuffer null;
  std::istringstream in(std::string(reinterpret_cast<const char *>(data), size));
  nnc::ReplOptions options;
  options.input = &in;
  options.fuzzing = true;
  std::streambuf *out = std::cout.rdbuf(&null), *err = std::cerr.rdbuf(&null);
  nnc::runRepl(options);
  std::cout.rdbuf(out);
  std::cerr.rdbuf(err);
  return 0;
}
