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

TEST_CASE("dense maps N×in to N×units with PyTorch's parameter layout") {
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

TEST_CASE("losses take one score per class") {
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

namespace {

Attrs convAttrs(int64_t out, std::vector<int64_t> kernel, std::vector<int64_t> stride = {1},
                std::vector<int64_t> padding = {0}) {
  Attrs a;
  a.set("out", AttrValue{out});
  a.set("kernel", AttrValue{std::move(kernel)});
  a.set("stride", AttrValue{std::move(stride)});
  a.set("padding", AttrValue{std::move(padding)});
  a.set("bias", AttrValue{true});
  return a;
}

Attrs poolAttrs(std::vector<int64_t> kernel, std::optional<std::vector<int64_t>> stride = {},
                std::vector<int64_t> padding = {0}) {
  Attrs a;
  a.set("kernel", AttrValue{std::move(kernel)});
  if (stride)
    a.set("stride", AttrValue{*stride});
  a.set("padding", AttrValue{std::move(padding)});
  return a;
}

} // namespace

TEST_CASE("conv2d: PyTorch's output size and OIHW weights") {
  // floor((H + 2p - k) / s) + 1
  CHECK(std::get<Shape>(infer("conv2d", {batch({1, 28, 28})}, convAttrs(32, {3}))).str() ==
        "[N, 32, 26, 26]");
  CHECK(std::get<Shape>(infer("conv2d", {batch({3, 28, 28})}, convAttrs(8, {5}, {2}, {1})))
            .str() == "[N, 8, 13, 13]");
  CHECK(std::get<Shape>(infer("conv2d", {batch({3, 10, 12})}, convAttrs(4, {3, 1}, {1, 2})))
            .str() == "[N, 4, 8, 6]");
  Attrs attrs = convAttrs(64, {3, 5});
  std::vector<Shape> in{batch({32, 13, 13})};
  std::string name = "conv2d";
  std::vector<ParamSpec> params = findOp("conv2d")->params(ShapeQuery{in, attrs, name});
  REQUIRE(params.size() == 2);
  CHECK(params[0].shape == std::vector<int64_t>{64, 32, 3, 5});
  CHECK(params[1].shape == std::vector<int64_t>{64});
}

TEST_CASE("conv2d rejects what PyTorch would reject, saying why") {
  auto err = [](ShapeResult r) {
    REQUIRE(std::holds_alternative<ShapeError>(r));
    return std::get<ShapeError>(r);
  };
  CHECK(err(infer("conv2d", {batch({1, 3, 3})}, convAttrs(4, {5}))).message ==
        "kernel 5×5 is larger than the 3×3 input of conv2d_1");
  CHECK(err(infer("conv2d", {batch({1, 3, 3})}, convAttrs(4, {6}, {1}, {1}))).message ==
        "kernel 6×6 is larger than the 3×3 input of conv2d_1 (5×5 after padding)");
  CHECK(err(infer("conv2d", {batch({28, 28})}, convAttrs(4, {3}))).hint ==
        "give the input a channel axis, e.g. x: [1, 28, 28]");
  CHECK(!err(infer("conv2d", {batch({1, 8, 8})}, convAttrs(4, {3, 3, 3}))).message.empty());
  CHECK(!err(infer("conv2d", {batch({1, 8, 8})}, convAttrs(4, {3}, {0}))).message.empty());
  CHECK(!err(infer("conv2d", {batch({1, 8, 8})}, convAttrs(4, {3}, {1}, {-1}))).message.empty());
}

TEST_CASE("pooling: the stride defaults to the kernel; padding at most half the kernel") {
  CHECK(std::get<Shape>(infer("maxpool2d", {batch({32, 26, 26})}, poolAttrs({2}))).str() ==
        "[N, 32, 13, 13]");
  CHECK(std::get<Shape>(infer("maxpool2d", {batch({64, 11, 11})}, poolAttrs({2}))).str() ==
        "[N, 64, 5, 5]");
  CHECK(std::get<Shape>(infer("avgpool2d", {batch({8, 7, 7})}, poolAttrs({3}, {{1}}, {1})))
            .str() == "[N, 8, 7, 7]");
  CHECK(std::holds_alternative<ShapeError>(
      infer("avgpool2d", {batch({8, 7, 7})}, poolAttrs({2}, {}, {2}))));
}

TEST_CASE("batchnorm owns weight and bias, and running statistics that are not trained") {
  Attrs attrs = defaultsOf(*findOp("batchnorm"));
  std::vector<Shape> in{batch({16, 5, 5})};
  std::string name = "bn";
  ShapeQuery q{in, attrs, name};
  CHECK(std::get<Shape>(findOp("batchnorm")->inferShape(q)).str() == "[N, 16, 5, 5]");
  std::vector<ParamSpec> p = findOp("batchnorm")->params(q);
  REQUIRE(p.size() == 4);
  CHECK((p[0].trainable && p[1].trainable && !p[2].trainable && !p[3].trainable));
  CHECK(p[2].name == "running_mean");
  CHECK(std::holds_alternative<ShapeError>(infer("batchnorm", {batch({2, 3, 4, 5})}, attrs)));
}

TEST_CASE("reshape infers one -1 and keeps the batch axis; transpose swaps two axes") {
  Attrs shape;
  shape.set("shape", AttrValue{std::vector<int64_t>{1, -1, 7}});
  CHECK(std::get<Shape>(infer("reshape", {batch({196})}, shape)).str() == "[N, 1, 28, 7]");
  shape.set("shape", AttrValue{std::vector<int64_t>{-1, -1}});
  CHECK(std::holds_alternative<ShapeError>(infer("reshape", {batch({196})}, shape)));
  shape.set("shape", AttrValue{std::vector<int64_t>{5, 5}});
  CHECK(std::holds_alternative<ShapeError>(infer("reshape", {batch({196})}, shape)));
  Attrs dims = defaultsOf(*findOp("transpose"));
  CHECK(std::get<Shape>(infer("transpose", {batch({2, 3, 4})}, dims)).str() == "[N, 2, 4, 3]");
  CHECK(std::get<Shape>(infer("transpose", {Shape{{2, 3}}}, dims)).str() == "[3, 2]");
  CHECK(std::holds_alternative<ShapeError>(infer("transpose", {batch({4})}, dims)));
}

TEST_CASE("constructors make unbatched tensors that broadcast over a batch") {
  Attrs shape;
  shape.set("shape", AttrValue{std::vector<int64_t>{2, 3}});
  for (const char *op : {"randn", "zeros", "ones"})
    CHECK(std::get<Shape>(infer(op, {}, shape)).str() == "[2, 3]");
  CHECK(std::get<Shape>(infer("add", {batch({2, 3}), Shape{{2, 3}}}, {})).str() == "[N, 2, 3]");
  CHECK(std::get<Shape>(infer("mul", {Shape{{2, 3}}, batch({2, 3})}, {})).str() == "[N, 2, 3]");
  CHECK(std::holds_alternative<ShapeError>(infer("add", {batch({2, 3}), Shape{{3, 2}}}, {})));
  CHECK(std::get<Shape>(infer("matmul", {batch({4, 2, 3}), Shape{{3, 5}}}, {})).str() ==
        "[N, 4, 2, 5]");
  CHECK(std::get<Shape>(infer("matmul", {Shape{{2, 3}}, Shape{{3, 2}}}, {})).str() == "[2, 2]");
}
