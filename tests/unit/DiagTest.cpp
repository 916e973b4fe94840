// DiagTest.cpp — the format of diagnostics: location, excerpt, caret, hints.
#include "support/Diag.h"

#include <catch2/catch.hpp>

#include <sstream>

using namespace nnc;

namespace {

std::string render(const std::string &text, SourceLoc loc, const std::string &message,
                   const std::string &hint = {}) {
  SourceManager sources;
  uint32_t file = sources.add("f.nn", text);
  loc.file = file;
  std::ostringstream out;
  Diag diag(sources, out);
  diag.error(loc, message, hint);
  return out.str();
}

} // namespace

TEST_CASE("an error shows file:line:col, the line and a caret under the culprit") {
  std::string out = render("a\nmodel Net(x: [4]) { x -> dens(2) }\n", {0, 2, 26, 4},
                           "unknown layer 'dens'", "did you mean 'dense'?");
  CHECK(out == "f.nn:2:26: error: unknown layer 'dens'\n"
               "    2 | model Net(x: [4]) { x -> dens(2) }\n"
               "      |                          ^~~~\n"
               "      = hint: did you mean 'dense'?\n");
}

TEST_CASE("columns count code points, so carets line up after non-ASCII text") {
  std::string out = render("# für x\nbad\n", {0, 1, 7, 1}, "m");
  CHECK(out == "f.nn:1:7: error: m\n"
               "    1 | # für x\n"
               "      |       ^\n");
}

TEST_CASE("tabs are shown as one column, as the lexer counts them") {
  std::string out = render("\tx", {0, 1, 2, 1}, "m");
  CHECK(out == "f.nn:1:2: error: m\n"
               "    1 |  x\n"
               "      |  ^\n");
}

TEST_CASE("a long line is shown as a window around the caret") {
  std::string line(1000, 'a');
  line[700] = 'X';
  std::string out = render(line, {0, 1, 701, 1}, "m");
  std::istringstream lines(out);
  std::string first, excerpt, caret;
  std::getline(lines, first);
  std::getline(lines, excerpt);
  std::getline(lines, caret);
  CHECK(excerpt.size() < 130);
  CHECK(excerpt.find("...") != std::string::npos);
  // The caret sits under the X.
  size_t x = excerpt.find('X');
  REQUIRE(x != std::string::npos);
  CHECK(caret.find('^') == x);
}

TEST_CASE("deferred diagnostics come out sorted by location") {
  SourceManager sources;
  uint32_t file = sources.add("f.nn", "a\nb\nc\n");
  std::ostringstream out;
  Diag diag(sources, out);
  diag.defer();
  diag.error({file, 3, 1, 1}, "third");
  diag.error({file, 1, 1, 1}, "first");
  diag.warning({file, 2, 1, 1}, "second");
  CHECK(out.str().empty());
  diag.flush();
  std::string s = out.str();
  CHECK(s.find("first") < s.find("second"));
  CHECK(s.find("second") < s.find("third"));
  CHECK(diag.errorCount() == 2);
  CHECK(diag.warningCount() == 1);
}

TEST_CASE("Diag stops after kMaxErrors errors") {
  SourceManager sources;
  uint32_t file = sources.add("f.nn", std::string(40, 'x') + "\n");
  std::ostringstream out;
  Diag diag(sources, out);
  for (uint32_t i = 1; i < Diag::kMaxErrors; ++i)
    diag.error({file, 1, i, 1}, "e");
  CHECK_THROWS_AS(diag.error({file, 1, 30, 1}, "e"), DiagLimitReached);
  CHECK(out.str().find("stopping after 20 errors") != std::string::npos);
}

TEST_CASE("an error repeated at the same place is reported once") {
  SourceManager sources;
  uint32_t file = sources.add("f.nn", "x\n");
  std::ostringstream out;
  Diag diag(sources, out);
  diag.error({file, 1, 1, 1}, "e");
  diag.error({file, 1, 1, 1}, "e");
  diag.error({file, 1, 1, 1}, "another");
  CHECK(diag.errorCount() == 2);
}

TEST_CASE("did you mean suggests only close names") {
  std::vector<std::string> ops{"dense", "flatten", "relu", "dropout"};
  CHECK(closestMatch("dens", ops) == "dense");
  CHECK(closestMatch("flaten", ops) == "flatten");
  CHECK(closestMatch("rleu", ops) == "relu");
  CHECK(closestMatch("conv2d", ops).empty());
  CHECK(closestMatch("x", ops).empty());
  CHECK(didYouMean("dens", ops) == "did you mean 'dense'?");
  CHECK(didYouMean("zzzzzz", ops).empty());
}

TEST_CASE("an error without a location is prefixed with nnc") {
  SourceManager sources;
  std::ostringstream out;
  Diag diag(sources, out);
  diag.errorNoLoc("cannot open 'x.nn': No such file or directory");
  CHECK(out.str() == "nnc: error: cannot open 'x.nn': No such file or directory\n");
}
