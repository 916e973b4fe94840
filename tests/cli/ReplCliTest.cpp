// ReplCliTest.cpp — `nnc repl` driven by scripts: each tests/repl/NAME.in is
// piped to nnc run in a scratch directory (stdout and stderr together, in
// the order written) and the transcript, with times masked and the source
// directory written SRC, must equal NAME.expected. UPDATE_GOLDEN=1 rewrites
// the expected files.
#include "Process.h"

#include <cstdlib>
#include <regex>

using namespace nnc_test;

namespace {

const std::string kSource = NNC_SOURCE_DIR;

/// The transcript of `nnc repl ARGS < tests/repl/NAME.in` in `dir`, times
/// masked; "SRC" in ARGS is the source directory.
std::string session(const std::string &name, std::string args, const TempDir &dir) {
  for (size_t at; (at = args.find("SRC")) != std::string::npos;)
    args.replace(at, 3, kSource);
  std::string out = dir.path + "/" + name + ".out";
  std::string cmd = "cd '" + dir.path + "' && '" + NNC_BINARY + "' repl " + args + " < '" +
                    kSource + "/tests/repl/" + name + ".in' > '" + out + "' 2>&1";
  int status = std::system(cmd.c_str());
  INFO(slurp(out));
  REQUIRE(status == 0);
  std::string text = slurp(out);
  text = std::regex_replace(text, std::regex("[0-9]+(\\.[0-9]+)? ms"), "# ms");
  text = std::regex_replace(text, std::regex("[0-9]+\\.[0-9]+ s\\b"), "# s");
  for (size_t at; (at = text.find(kSource)) != std::string::npos;)
    text.replace(at, kSource.size(), "SRC");
  return text;
}

void compare(const std::string &name, const std::string &text) {
  std::string expected = kSource + "/tests/repl/" + name + ".expected";
  if (std::getenv("UPDATE_GOLDEN") != nullptr)
    std::ofstream(expected, std::ios::binary) << text;
  CHECK(text == slurp(expected));
}

} // namespace

TEST_CASE("repl: load mnist.nn, train an epoch, swap ReLU for GELU, train again, compare") {
  TempDir dir;
  std::string text = session("mnist", "SRC/examples/mnist.nn --data SRC/tests/data/mnist-slice", dir);
  compare("mnist", text);
  // The checkpoint :save wrote is nnc's.
  Run eval = nnc({kSource + "/examples/mnist.nn", "--eval", "--weights", dir.path + "/repl-test.st",
                  "--data", kSource + "/tests/data/mnist-slice"});
  // mnist.nn's own model has fc2 of 64: the session's replaced fc2 (32) is refused.
  CHECK(eval.status == 1);
  CHECK(eval.err.find("fc2.weight") != std::string::npos);
}

TEST_CASE("repl: a model typed from scratch, mistakes reported and the session going on") {
  TempDir dir;
  compare("scratch", session("scratch", "--data SRC/tests/data/mnist-slice", dir));
}
