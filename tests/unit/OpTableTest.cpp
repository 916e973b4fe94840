// OpTableTest.cpp — every row of the op table is complete and its shape
// rules give PyTorch's shapes and parameter counts.
#include "ops/OpTable.h"
#include "train/Settings.h"

#include <catch2/catch.hpp>

#include <set>

using namespace nnc;

namespace {

Attrs defaultsOf(const OpDef &op) {
  Attrs a;
  for (const AttrSpec &s : op.attrs)
    if (s.defaultValue)
      a.set(s.name, *s.defaultValue);
  return a;
}

ShapeResult infer(const std::string &op, std::vector<Shape> inputs, Attrs attrs) {
  const OpDef *def = findOp(op);
  REQUIRE(def != nullptr);
  std::string name = op + "_1";
  return def->inferShape(ShapeQuery{inputs, attrs, name});
}

Shape batch(std::vector<int64_t> dims) { return Shape::batched(std::move(dims)); }

} // namespace

TEST_CASE("every op row is complete, and names are unique") {
  std::set<std::string> names;
  for (const OpDef &op : allOps()) {
    INFO(op.name);
    CHECK(names.insert(op.name).second);
    CHECK(op.inferShape);
    CHECK(!op.summary.empty());
    CHECK((op.arity >= 0 || op.arity == kVariadic));
    std::set<std::string> attrNames;
    for (const AttrSpec &a : op.attrs) {
      CHECK(attrNames.insert(a.name).second);
      CHECK_FALSE((a.required && a.defaultValue.has_value()));
      CHECK(!a.doc.empty());
    }
  }
}

TEST_CASE("dense: [N, in] -> [N, units] with PyTorch's parameter layout") {
  Attrs attrs = defaultsOf(*findOp("dense"));
  attrs.set("units", AttrValue{int64_t{64}});
  std::vector<Shape> in{batch({784})};
  std::string name = "dense_1";
  ShapeQuery q{in, attrs, name};
  ShapeResult r = findOp("dense")->inferShape(q);
  REQUIRE(std::holds_alternative<Shape>(r));
  CHECK(std::get<Shape>(r).str() == "[N, 64]");
  std::vector<ParamSpec> params = findOp("dense")->params(q);
  REQUIRE(params.size() == 2);
  CHECK(params[0].name == "weight");
  CHECK(params[0].shape == std::vector<int64_t>{64, 784});
  CHECK(params[1].shape == std::vector<int64_t>{64});
  attrs.set("bias", AttrValue{false});
  CHECK(findOp("dense")->params(q).size() == 1);
}

TEST_CASE("dense on an image asks for flatten") {
  Attrs attrs;
  attrs.set("units", AttrValue{int64_t{10}});
  attrs.set("bias", AttrValue{true});
  ShapeResult r = infer("dense", {batch({1, 28, 28})}, attrs);
  REQUIRE(std::holds_alternative<ShapeError>(r));
  CHECK(std::get<ShapeError>(r).hint == "insert 'flatten' before it");
}

TEST_CASE("flatten, activations and softmax") {
  CHECK(std::get<Shape>(infer("flatten", {batch({3, 4, 5})}, {})).str() == "[N, 60]");
  for (const char *op : {"relu", "sigmoid", "tanh", "gelu", "leaky_relu", "dropout", "neg"})
    CHECK(std::get<Shape>(infer(op, {batch({7, 3})}, defaultsOf(*findOp(op)))).str() ==
          "[N, 7, 3]");
  Attrs axis;
  axis.set("axis", AttrValue{int64_t{-1}});
  CHECK(std::holds_alternative<Shape>(infer("softmax", {batch({10})}, axis)));
  axis.set("axis", AttrValue{int64_t{2}});
  CHECK(std::holds_alternative<ShapeError>(infer("softmax", {batch({10})}, axis)));
  axis.set("axis", AttrValue{int64_t{0}});
  CHECK(std::holds_alternative<ShapeError>(infer("log_softmax", {batch({10})}, axis)));
}

TEST_CASE("joins: add, mul, concat and matmul") {
  CHECK(std::holds_alternative<Shape>(infer("add", {batch({4}), batch({4})}, {})));
  CHECK(std::holds_alternative<ShapeError>(infer("mul", {batch({4}), batch({5})}, {})));
  Attrs axis;
  axis.set("axis", AttrValue{int64_t{1}});
  CHECK(std::get<Shape>(infer("concat", {batch({4, 2}), batch({3, 2}), batch({1, 2})}, axis))
            .str() == "[N, 8, 2]");
  CHECK(std::holds_alternative<ShapeError>(infer("concat", {batch({4, 2}), batch({3, 3})}, axis)));
  CHECK(std::get<Shape>(infer("matmul", {batch({2, 3}), batch({3, 5})}, {})).str() ==
        "[N, 2, 5]");
  CHECK(std::holds_alternative<ShapeError>(infer("matmul", {batch({2, 3}), batch({4, 5})}, {})));
}

TEST_CASE("losses take [N, classes]") {
  CHECK(std::holds_alternative<Shape>(infer("cross_entropy", {batch({10})}, {})));
  CHECK(std::holds_alternative<ShapeError>(infer("cross_entropy", {batch({1, 28, 28})}, {})));
  CHECK(std::holds_alternative<Shape>(infer("mse", {batch({10})}, {})));
}

TEST_CASE("shape products detect overflow") {
  CHECK_FALSE(product({int64_t(1) << 40, int64_t(1) << 40}).has_value());
  CHECK(product({kBatch, 3, 4}) == 12);
}

TEST_CASE("optimizer, schedule and block tables are complete") {
  for (const auto *table : {&optimizerTable(), &scheduleTable()})
    for (const SettingDef &def : *table) {
      INFO(def.name);
      CHECK(!def.summary.empty());
      for (const AttrSpec &a : def.attrs)
        CHECK((a.required || a.defaultValue.has_value()));
    }
  CHECK(findConfigBlock("data") != nullptr);
  CHECK(findConfigBlock("train") != nullptr);
  CHECK(findConfigBlock("model") == nullptr);
}
