// SemaTest.cpp — semantic analysis: names, defaults, shapes and mistakes.
#include "Compile.h"

#include <catch2/catch.hpp>

using namespace nnc;
using nnc::test::compile;
using nnc::test::withModel;

namespace {

bool mentions(const test::Compiled &c, const std::string &text) {
  return c.diagnostics.find(text) != std::string::npos;
}

} // namespace

TEST_CASE("the origin's MLP has 55,050 parameters under stable names") {
  test::Compiled c = compile(withModel(
      "[1, 28, 28]", "x -> flatten -> dense(64) -> relu -> dense(64) -> relu -> dense(10)"));
  REQUIRE(c.program);
  const Model &m = c.program->model;
  CHECK(m.paramCount() == 55050);
  std::vector<std::string> names;
  for (const Layer &l : m.layers)
    names.push_back(l.name);
  CHECK(names == std::vector<std::string>{"flatten_1", "dense_1", "relu_1", "dense_2", "relu_2",
                                          "dense_3"});
  CHECK(m.layers[1].params[0].name == "dense_1.weight");
  CHECK(m.layers[1].params[0].shape == std::vector<int64_t>{64, 784});
  CHECK(m.values[m.output].shape.str() == "[N, 10]");
}

TEST_CASE("automatic names skip the user's labels") {
  test::Compiled c =
      compile(withModel("[4]", "x -> dense(8) -> dense_1: dense(8) -> dense(2)"));
  REQUIRE(c.program);
  const auto &layers = c.program->model.layers;
  CHECK(layers[0].name == "dense_2");
  CHECK(layers[1].name == "dense_1");
  CHECK(layers[2].name == "dense_3");
}

TEST_CASE("settings are resolved with their defaults") {
  test::Compiled c = compile(
      "model Net(x: [1, 2, 2]) { x -> flatten -> dense(2) }\nloss cross_entropy\n"
      "optimizer sgd(0.1, momentum=0.9)\n"
      "schedule step(every=3)\ndata { path \"d\", shuffle, normalize(0.5, 0.25), validation 0.1,"
      " augment { flip } }\ntrain { epochs 3 }\n");
  REQUIRE(c.program);
  const Program &p = *c.program;
  CHECK(p.optimizer.str() == "sgd(lr=0.1, momentum=0.9, dampening=0, nesterov=false, "
                             "weight_decay=0)");
  CHECK(p.schedule.str() == "step(every=3, gamma=0.1, warmup=0)");
  CHECK(p.data.path == "d");
  CHECK(p.data.batch == 64);
  CHECK(p.data.shuffle);
  CHECK(p.data.mean == 0.5);
  CHECK(p.data.std == 0.25);
  CHECK(p.data.validation == 0.1);
  REQUIRE(p.data.augment.flip);
  CHECK(p.data.augment.flip->attrs.getFloat("p") == 0.5);
  CHECK(p.train.epochs == 3);
  CHECK(p.train.seed == 0);
}

TEST_CASE("a missing schedule is constant; a missing train block has defaults") {
  test::Compiled c = compile(withModel("[4]", "x -> dense(2)"));
  REQUIRE(c.program);
  CHECK(c.program->schedule.name == "constant");
  CHECK(c.program->train.epochs == 1);
  CHECK_FALSE(c.program->data.declared);
}

TEST_CASE("independent mistakes are all reported, in source order") {
  test::Compiled c = compile("data { bach 64 }\n"
                             "model Net(x: [4]) { x -> dens(2) }\n"
                             "loss cross_entropy\n"
                             "optimizer adam(lr=-1)\n");
  CHECK_FALSE(c.program);
  CHECK(c.errors == 3);
  size_t a = c.diagnostics.find("unknown entry 'bach'");
  size_t b = c.diagnostics.find("unknown layer 'dens'");
  size_t d = c.diagnostics.find("must be greater than 0 but is -1");
  REQUIRE(a != std::string::npos);
  REQUIRE(b != std::string::npos);
  REQUIRE(d != std::string::npos);
  CHECK(a < b);
  CHECK(b < d);
}

TEST_CASE("graph form: named values, fan-out and joins") {
  test::Compiled c = compile(withModel("[8]", "h = x -> dense(8) -> relu\n"
                                              "g = h -> dense(8)\n"
                                              "s = add(h, g)\n"
                                              "return concat(s, h, axis=1) -> dense(3)"));
  REQUIRE(c.program);
  const Model &m = c.program->model;
  CHECK(m.values[m.output].shape.str() == "[N, 3]");
  const Layer &add = m.layers[3];
  CHECK(add.op->name == "add");
  CHECK(add.inputs.size() == 2);
  CHECK(c.warnings == 0);
}

TEST_CASE("values: undefined, used before defined, redefined, unused") {
  CHECK(mentions(compile(withModel("[4]", "y -> dense(2)")), "unknown value 'y'"));
  test::Compiled cycle = compile(withModel("[4]", "a = b -> relu\nb = a -> relu\nb -> dense(2)"));
  CHECK(mentions(cycle, "'b' is used before it is defined"));
  CHECK(mentions(cycle, "cannot form a cycle"));
  CHECK(mentions(compile(withModel("[4]", "h = x -> relu\nh = x -> relu\nh -> dense(2)")),
                 "'h' is already defined"));
  test::Compiled unused = compile(withModel("[4]", "h = x -> relu\nx -> dense(2)"));
  REQUIRE(unused.program);
  CHECK(unused.warnings == 1);
  CHECK(mentions(unused, "warning: value 'h' of model Net is never used"));
}

TEST_CASE("attribute mistakes") {
  auto check = [](const std::string &body, const std::string &message) {
    test::Compiled c = compile(withModel("[4]", body));
    INFO(c.diagnostics);
    CHECK_FALSE(c.program);
    CHECK(mentions(c, message));
  };
  check("x -> dense(2.5)", "attribute 'units' of dense expects an integer but got the number 2.5");
  check("x -> dense", "dense needs attribute 'units'");
  check("x -> dense(2, units=3)", "attribute 'units' is given twice");
  check("x -> dense(2, true, 4)", "too many arguments: dense takes at most 2");
  check("x -> dense(2, biass=false)", "did you mean 'bias'?");
  check("x -> dropout(1.5) -> dense(2)", "attribute 'p' of dropout must be less than 1 but is 1.5");
  check("x -> gelu(approximate=\"fast\") -> dense(2)", "must be one of 'none', 'tanh'");
  check("x -> dense(0)", "attribute 'units' of dense must be at least 1 but is 0");
  check("x -> relu(1) -> dense(2)", "relu takes no attributes");
}

TEST_CASE("declaration mistakes") {
  CHECK(mentions(compile("model N(x: [4]) { x -> dense(2) }\noptimizer adam\n"),
                 "no loss is declared for model N"));
  CHECK(mentions(compile("model N(x: [4]) { x -> dense(2) }\nloss mse\n"),
                 "no optimizer is declared"));
  CHECK(mentions(compile(withModel("[4]", "x -> dense(2)") + "loss mse\n"),
                 "'loss' is declared twice"));
  CHECK(mentions(compile(withModel("[4]", "x -> dense(2)") + "optimiser sgd(0.1)\n"),
                 "did you mean 'optimizer'?"));
  CHECK(mentions(compile(withModel("[4]", "x -> dense(2)", "crossentropy")),
                 "did you mean 'cross_entropy'?"));
  CHECK(mentions(compile(withModel("[4]", "x -> dense(2)") + "schedule cosin\n"),
                 "did you mean 'cosine'?"));
  CHECK(mentions(compile("model N(x: [4]) { x -> dense(2) }\nloss mse\n"
                         "optimizer sgd(lr=0.1, nesterov=true)\n"),
                 "Nesterov momentum needs momentum > 0"));
  CHECK(mentions(compile(""), "the file declares nothing"));
}

TEST_CASE("model mistakes") {
  CHECK(mentions(compile(withModel("[1, 28, 28]", "x -> dense(10)")),
                 "insert 'flatten' before it"));
  CHECK(mentions(compile(withModel("[1, 28, 28]", "x -> relu")),
                 "cross_entropy expects the model to output one score per class"));
  CHECK(mentions(compile(withModel("[4]", "x -> cross_entropy")), "is a loss, not a layer"));
  CHECK(mentions(compile(withModel("[4]", "relu")), "'relu' is a layer, not a value"));
  CHECK(mentions(compile(withModel("[0, 3]", "x -> flatten -> dense(2)")),
                 "every dimension must be at least 1"));
  CHECK(mentions(compile(withModel("[4]", "return x -> dense(2)\nx -> relu")),
                 "statement after 'return' is never evaluated"));
  CHECK(mentions(compile(withModel("[4]", "h = x -> dense(2)")), "has no output"));
  CHECK(mentions(compile(withModel("[4]", "x -> a: dense(4) -> a: dense(2)")),
                 "layer name 'a' is taken"));
  CHECK(mentions(compile(withModel("[4]", "add(x) -> dense(2)")), "add takes 2 inputs but gets 1"));
  CHECK(mentions(compile(withModel("[4]", "x -> dense(2) -> 3")), "error:"));
}

TEST_CASE("sizes that overflow are errors, not wrong numbers") {
  test::Compiled c =
      compile(withModel("[1000000, 1000000, 1000000]", "x -> flatten -> dense(10)"));
  CHECK_FALSE(c.program);
  CHECK(mentions(c, "too large"));
  c = compile(withModel("[100000]", "x -> dense(1000000000) -> dense(10)"));
  CHECK_FALSE(c.program);
  CHECK(mentions(c, "parameters"));
}

TEST_CASE("augmentations must fit the model's input") {
  auto program = [](const std::string &input, const std::string &augment) {
    return withModel(input, "x -> flatten -> dense(10)") + "data { path \"d\", augment { " +
           augment + " } }\n";
  };
  CHECK(compile(program("[1, 28, 28]", "crop(28, padding=2) rotate(10) flip")).program);
  CHECK(mentions(compile(program("[1, 28, 28]", "crop(24)")), "crop(24) makes 24×24 images"));
  CHECK(mentions(compile(program("[784]", "flip")), "augmentations transform images"));
}

TEST_CASE("blocks expand per use, with names prefixed by the use") {
  test::Compiled c = compile("block mlp(units, out=8)(x) {\n"
                             "  h = x -> a: dense(units) -> relu\n"
                             "  return h -> dense(out)\n"
                             "}\n" +
                             withModel("[4]", "x -> first: mlp(16) -> mlp(units=4, out=3)"));
  REQUIRE(c.program);
  std::vector<std::string> names;
  for (const Layer &l : c.program->model.layers)
    names.push_back(l.name);
  CHECK(names == std::vector<std::string>{"first.a", "first.relu_1", "first.dense_1",
                                          "mlp_1.a", "mlp_1.relu_1", "mlp_1.dense_1"});
  const Model &m = c.program->model;
  CHECK(m.values[m.output].shape.str() == "[N, 3]");
  CHECK(m.layers[0].params[0].name == "first.a.weight");
  CHECK(m.layers[2].attrs.getInt("units") == 8); // the default of `out`
  CHECK(m.paramCount() == (4 * 16 + 16) + (16 * 8 + 8) + (8 * 4 + 4) + (4 * 3 + 3));
}

TEST_CASE("blocks: parameters pass through nested uses; calls take inputs first") {
  test::Compiled c = compile("block inner(k)(x) { x -> dense(k) }\n"
                             "block outer(k)(x, y) { add(inner(x, k), y -> inner(k)) }\n" +
                             withModel("[4]", "outer(x, x, 6) -> dense(2)"));
  REQUIRE(c.program);
  CHECK(c.program->model.layers[0].name == "outer_1.inner_1.dense_1");
  CHECK(c.program->model.layers[0].attrs.getInt("units") == 6);
}

TEST_CASE("block mistakes") {
  auto check = [](const std::string &blocks, const std::string &body, const std::string &text) {
    test::Compiled c = compile(blocks + withModel("[4]", body));
    INFO(c.diagnostics);
    CHECK_FALSE(c.program);
    CHECK(mentions(c, text));
  };
  check("block b(u)(x) { x -> b(u) }\n", "x -> b(2)", "block 'b' uses itself");
  check("block a(u)(x) { x -> c(u) }\nblock c(u)(x) { x -> a(u) }\n", "x -> a(2)",
        "blocks cannot be recursive: a -> c -> a");
  check("block b(u)(x, y) { add(x, y) }\n", "x -> b(2)", "b takes 2 inputs");
  check("block b(u)(x) { x -> dense(u) }\n", "x -> b(2, 3)", "too many arguments");
  check("block b(units)(x) { x -> dense(units) }\n", "x -> b(unit=2)", "did you mean 'units'?");
  check("block b(u)(x) { x -> dense(u) }\n", "x -> b", "block b needs parameter 'u'");
  check("block dense(u)(x) { x }\n", "x -> relu", "has the name of a built-in layer");
  check("block b(u)(x) { x -> dense(u) }\n", "x -> b(x)", "one input too many");
  check("block b(u)(x) { x -> dense(u) }\n", "h = x -> relu\nb(x, u=h)", "must be a constant");
  check("block b(u)(x) { u -> relu }\n", "x -> b(2)", "'u' is a parameter of block b");
  check("block b(u)(x) { x -> dense(u) }\n", "x -> b(2.5)",
        "expects an integer but got the number 2.5 (the value of 'u')");
  check("block b(u)(x) { x -> reshape(u) -> dense(2) }\n", "x -> b(3)",
        "in block 'b' used here");
  check("block b(u = x)(x) { x }\n", "x -> b", "must be a constant");
  check("block b()() { zeros(2) }\n", "x -> dense(2)", "block 'b' takes no input");
}

TEST_CASE("an unused block is a warning; warnings in a block body come once") {
  test::Compiled c = compile("block unused(u)(x) { x -> dense(u) }\n"
                             "block b(u)(x) { h = x -> relu\n x -> dense(u) }\n" +
                             withModel("[4]", "x -> b(2) -> b(2)"));
  REQUIRE(c.program);
  CHECK(c.warnings == 2);
  CHECK(mentions(c, "warning: block 'unused' is never used"));
  CHECK(mentions(c, "warning: value 'h' of block b is never used"));
}

TEST_CASE("the examples' convolutional models check, with PyTorch's parameter counts") {
  test::Compiled c = compile(withModel("[1, 28, 28]",
                                       "x -> conv2d(32, 3) -> relu -> maxpool2d(2)\n"
                                       "  -> conv2d(64, 3) -> relu -> maxpool2d(2)\n"
                                       "  -> flatten -> dense(128) -> relu -> dense(10)"));
  REQUIRE(c.program);
  CHECK(c.program->model.paramCount() == 225034);
}

TEST_CASE("regressions from review: concat batchedness, huge windows, input aliases") {
  CHECK(mentions(compile(withModel("[5]", "concat(randn(1, 5), x, axis=0) -> dense(2)")),
                 "joins a batch with a tensor that has no batch axis"));
  CHECK(mentions(compile(withModel("[1, 28, 28]",
                                   "x -> conv2d(4, 3, padding=9223372036854775807) -> flatten "
                                   "-> dense(2)")),
                 "must be at most 1048576"));
  test::Compiled alias = compile(withModel("[10]", "h = x\ng = h\nreturn g -> dense(2)"));
  REQUIRE(alias.program);
  CHECK(alias.program->model.values[static_cast<size_t>(alias.program->model.inputs[0])].name ==
        "x");
  test::Compiled neg = compile("block inner(c)(x) { x -> softmax(axis=c) }\n"
                               "block outer(c)(x) { x -> inner(c=-c) -> softmax(axis=-c) }\n" +
                               withModel("[3, 4]", "x -> outer(1) -> flatten -> dense(2)"));
  INFO(neg.diagnostics);
  REQUIRE(neg.program);
  CHECK(neg.program->model.layers[0].attrs.getInt("axis") == -1);
  CHECK(mentions(compile(withModel("[4]", "concat(x, 1, x) -> dense(2)")),
                 "concat takes its inputs first, then its attributes"));
}
