// ParseTest.cpp — the parser: AST shape, literals, limits and lexical errors.
#include "Compile.h"

#include <catch2/catch.hpp>

using namespace nnc;
using nnc::test::compile;

namespace {

/// Parses only; returns the module (empty on error) and the diagnostics.
std::pair<Module, std::string> parse(const std::string &text) {
  SourceManager sources;
  std::ostringstream out;
  Diag diag(sources, out);
  uint32_t file = sources.add("p.nn", text);
  Module m = parseModule(sources, file, diag);
  return {std::move(m), out.str()};
}

} // namespace

TEST_CASE("a chain parses into a head and stages with labels and arguments") {
  auto [m, diags] = parse("model Net(x: [1, 28, 28]) { x -> flatten -> fc1: dense(64, bias=false) }");
  REQUIRE(diags.empty());
  REQUIRE(m.models.size() == 1);
  const ModelDecl &model = m.models[0];
  CHECK(model.name.name == "Net");
  REQUIRE(model.params.size() == 1);
  CHECK(model.params[0].shape == std::vector<int64_t>{1, 28, 28});
  REQUIRE(model.body.size() == 1);
  const Expr &chain = *model.body[0].value;
  REQUIRE(chain.kind == ExprKind::Chain);
  CHECK(chain.operands[0]->text == "x");
  REQUIRE(chain.stages.size() == 2);
  CHECK(chain.stages[0].callee.name == "flatten");
  CHECK_FALSE(chain.stages[0].hasParens);
  const Stage &dense = chain.stages[1];
  CHECK(dense.label->name == "fc1");
  CHECK(dense.callee.name == "dense");
  CHECK(dense.callee.loc.line == 1);
  CHECK(dense.callee.loc.column == 50);
  REQUIRE(dense.args.size() == 2);
  CHECK(dense.args[0].value->intValue == 64);
  CHECK(dense.args[1].name->name == "bias");
  CHECK(dense.args[1].value->kind == ExprKind::Bool);
}

TEST_CASE("numbers: integers, decimals and exponents") {
  auto [m, diags] = parse("optimizer sgd(1, 2.5, 1e-3, .5, 3E+2, -7)");
  REQUIRE(diags.empty());
  const std::vector<Arg> &args = m.settings[0].value.args;
  REQUIRE(args.size() == 6);
  CHECK(args[0].value->kind == ExprKind::Int);
  CHECK(args[1].value->floatValue == 2.5);
  CHECK(args[2].value->floatValue == 1e-3);
  CHECK(args[3].value->floatValue == 0.5);
  CHECK(args[4].value->floatValue == 300.0);
  CHECK(args[5].value->kind == ExprKind::Neg);
}

TEST_CASE("comments of both kinds, and block comments, are ignored") {
  auto [m, diags] = parse("# a\n// b\n/* c\n d */ loss mse # e\n");
  REQUIRE(diags.empty());
  REQUIRE(m.settings.size() == 1);
  CHECK(m.settings[0].keyword.loc.line == 4);
}

TEST_CASE("configuration entries read like calls") {
  auto [m, diags] = parse("data d { path \"a\\\"b\", batch 32; shuffle normalize(0.1, std=0.3) "
                          "augment { flip } }");
  REQUIRE(diags.empty());
  const ConfigDecl &d = m.configs[0];
  CHECK(d.label->name == "d");
  REQUIRE(d.items.size() == 5);
  CHECK(d.items[0].args[0].value->text == "a\"b");
  CHECK(d.items[1].args[0].value->intValue == 32);
  CHECK(d.items[2].args.empty());
  CHECK(d.items[3].args.size() == 2);
  CHECK(d.items[4].hasBlock);
  CHECK(d.items[4].children.size() == 1);
}

TEST_CASE("graph statements: assignment, return, calls and @") {
  auto [m, diags] =
      parse("model M(x: [4]) { h = x -> dense(4); g = add(h, x) @ h; return -g -> relu }");
  REQUIRE(diags.empty());
  const auto &body = m.models[0].body;
  REQUIRE(body.size() == 3);
  CHECK(body[0].kind == StmtKind::Assign);
  CHECK(body[0].target->name == "h");
  CHECK(body[1].value->kind == ExprKind::MatMul);
  CHECK(body[1].value->operands[0]->kind == ExprKind::Call);
  CHECK(body[2].kind == StmtKind::Return);
  CHECK(body[2].value->kind == ExprKind::Chain);
  CHECK(body[2].value->operands[0]->kind == ExprKind::Neg);
}

TEST_CASE("nesting up to the limit parses; one more level is an error, not a crash") {
  auto nested = [](int depth) {
    return "model M(x: [4]) { " + std::string(depth - 1, '(') + "x" +
           std::string(depth - 1, ')') + " }";
  };
  CHECK(parse(nested(kMaxNesting)).second.empty());
  std::string err = parse(nested(kMaxNesting + 1)).second;
  CHECK(err.find("nesting deeper than 256 levels") != std::string::npos);
  // Brackets inside strings and comments do not count.
  std::string text = "# " + std::string(1000, '(') + "\ndata d { path \"" +
                     std::string(1000, '[') + "\" }";
  CHECK(parse(text).second.empty());
  // Unary minus recurses too.
  CHECK(parse("optimizer sgd(" + std::string(100000, '-') + "1)").second.find("nesting") !=
        std::string::npos);
}

TEST_CASE("bytes that are not UTF-8 are reported at their position") {
  std::string text = "loss mse\n# caf\xC3\xA9 \xFF\n";
  std::string err = parse(text).second;
  CHECK(err.rfind("p.nn:2:8: error: invalid UTF-8 byte 0xFF", 0) == 0);
  // Overlong encodings and surrogates are not UTF-8 either.
  CHECK(!parse("#\xC0\xAF\n").second.empty());
  CHECK(!parse("#\xED\xA0\x80\n").second.empty());
  CHECK(parse("# \xF0\x9F\x98\x80 emoji\nloss mse").second.empty());
}

TEST_CASE("lexical mistakes are explained") {
  CHECK(parse("loss mse $").second.find("unexpected character '$'") != std::string::npos);
  CHECK(parse("data { path \"abc }").second.find("unterminated string") != std::string::npos);
  CHECK(parse("loss mse /* x").second.find("unterminated /* comment") != std::string::npos);
  CHECK(parse("data { path 'x' }").second.find("strings are written in double quotes") !=
        std::string::npos);
  CHECK(parse("loss mse \x01").second.find("unexpected character 0x01") != std::string::npos);
}

TEST_CASE("literals out of range are errors") {
  CHECK(parse("optimizer sgd(99999999999999999999)").second.find("too large") !=
        std::string::npos);
  CHECK(parse("optimizer sgd(1e999)").second.find("out of range") != std::string::npos);
  CHECK(parse("data { path \"a\\qb\" }").second.find("unknown escape sequence '\\q'") !=
        std::string::npos);
}

TEST_CASE("syntax errors say what was expected and where") {
  std::string err = parse("model Net(x: [4]) {\n  x -> dense(4\n}\n").second;
  CHECK(err.find("p.nn:3:1: error: expected ')' before '}'") != std::string::npos);
  CHECK(err.find("p.nn:2:13: note: to match this '('") != std::string::npos);
  err = parse("model (x: [4]) { x }").second;
  CHECK(err.find("p.nn:1:7: error:") != std::string::npos);
  CHECK(err.find("a name") != std::string::npos);
}
