// InferenceCliTest.cpp — `nnc FILE --emit-cpp DIR --inference --weights CKPT`:
// for every example, the inference library builds with g++ alone at
// -fno-exceptions, calls nothing that allocates, throws or does I/O, and
// predicts what `nnc --predict` does on real test digits.
#include "Checkpoint.h"
#include "Idx.h"
#include "Process.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

using namespace nnc_test;

namespace {

const std::string kSource = NNC_SOURCE_DIR;
const std::string kSlice = kSource + "/tests/data/mnist-slice";

/// The first `count` images and labels of the committed slice's split
/// `prefix` ("train" or "t10k").
void sliceImages(const std::string &prefix, uint32_t count, nnc_rt::IdxArray &images,
                 nnc_rt::IdxArray &labels) {
  std::string why;
  REQUIRE(nnc_rt::readIdx(kSlice + "/" + prefix + "-images-idx3-ubyte.gz", 3, images, why));
  REQUIRE(nnc_rt::readIdx(kSlice + "/" + prefix + "-labels-idx1-ubyte.gz", 1, labels, why));
  images.data.resize(size_t(count) * 784);
  images.dims[0] = count;
  labels.data.resize(count);
  labels.dims[0] = count;
}

/// A data directory of the slice's first 64 training digits (one step of
/// training, enough to move every weight away from its initial value).
std::string oneBatchOfDigits(const TempDir &dir) {
  std::string data = dir.path + "/data";
  REQUIRE(std::system(("mkdir -p '" + data + "'").c_str()) == 0);
  nnc_rt::IdxArray images, labels;
  sliceImages("train", 64, images, labels);
  for (const char *split : {"train", "t10k"}) {
    writeIdx(data + "/" + split + "-images-idx3-ubyte", images.dims, images.data);
    writeIdx(data + "/" + split + "-labels-idx1-ubyte", labels.dims, labels.data);
  }
  return data;
}

/// Undefined symbols of an object file.
std::set<std::string> undefinedSymbols(const std::string &object) {
  std::string listing = object + ".nm";
  REQUIRE(std::system(("nm -u '" + object + "' > '" + listing + "'").c_str()) == 0);
  std::set<std::string> out;
  std::istringstream in(slurp(listing));
  for (std::string kind, name; in >> kind >> name;)
    out.insert(name.substr(0, name.find('@')));
  return out;
}

/// A program that classifies the raw float images on stdin with nnc_predict
/// and prints, per image, the class and the probabilities.
const char *const kDriver = R"(#include "nnc_predict.h"
#include <cstdio>
int main() {
  static float image[NNC_PREDICT_INPUTS];
  float probabilities[NNC_PREDICT_CLASSES];
  if (nnc_predict(nullptr, probabilities) != -1 || nnc_predict(image, nullptr) != -1)
    return 2;
  while (std::fread(image, sizeof(float), NNC_PREDICT_INPUTS, stdin) == NNC_PREDICT_INPUTS) {
    std::printf("%d", nnc_predict(image, probabilities));
    for (float p : probabilities)
      std::printf(" %.9g", static_cast<double>(p));
    std::printf("\n");
  }
  return 0;
}
)";

} // namespace

TEST_CASE("every example's inference library builds alone, allocates nothing and predicts as "
          "nnc --predict does", "[slow]") {
  TempDir dir;
  const std::string data = oneBatchOfDigits(dir);
  // Test digits, as PGM files for nnc --predict and as floats (byte / 255)
  // for the library.
  constexpr uint32_t kImages = 4;
  nnc_rt::IdxArray images, labels;
  sliceImages("t10k", kImages, images, labels);
  std::ofstream floats(dir.path + "/images.f32", std::ios::binary);
  for (uint32_t i = 0; i < kImages; ++i) {
    std::ofstream pgm(dir.path + "/digit" + std::to_string(i) + ".pgm", std::ios::binary);
    pgm << "P5\n28 28\n255\n";
    pgm.write(reinterpret_cast<const char *>(images.data.data() + i * 784), 784);
    for (uint32_t k = 0; k < 784; ++k) {
      float v = static_cast<float>(images.data[i * 784 + k] / 255.0);
      floats.write(reinterpret_cast<const char *>(&v), sizeof v);
    }
  }
  floats.close();

  // Every example, and mnist.nn with the data block's normalization (no
  // example has one).
  std::string mnist = slurp(kSource + "/examples/mnist.nn");
  const std::string shuffle = "  shuffle\n";
  REQUIRE(mnist.find(shuffle) != std::string::npos);
  mnist.replace(mnist.find(shuffle), shuffle.size(),
                shuffle + "  normalize(mean=0.1307, std=0.3081)\n");
  dir.write("normalized.nn", mnist);
  for (const char *example : {"mnist", "mnist_augment", "fashion", "lenet", "fashion_cnn",
                              "resnet_tiny", "normalized"}) {
    INFO(example);
    const std::string nn = std::string(example) == "normalized"
                               ? dir.path + "/normalized.nn"
                               : kSource + "/examples/" + example + ".nn";
    const std::string work = dir.path + "/" + example, weights = work + ".st", out = work + "/lib";
    Run trained = nnc({nn, "--train", "--epochs", "1", "--data", data, "--save", weights});
    INFO(trained.err);
    REQUIRE(trained.status == 0);
    Run emitted = nnc({nn, "--emit-cpp", out, "--inference", "--weights", weights});
    INFO(emitted.err);
    REQUIRE(emitted.status == 0);

    // Only its own files, and an object built with no include path into
    // the repository and without exceptions; no warnings.
    std::string listing = slurp(out + "/README.md");
    CHECK(listing.find("nnc_predict(image, probabilities)") != std::string::npos);
    const std::string object = work + "/nnc_predict.o";
    std::string build = "cd '" + out + "' && g++ -std=c++17 -O3 -march=native -fno-exceptions " +
                        "-Wall -Wextra -c nnc_predict.cpp -o '" + object + "' 2> '" + work +
                        "/build.log'";
    REQUIRE(std::system(build.c_str()) == 0);
    CHECK(slurp(work + "/build.log") == "");

    // No allocation, exceptions, I/O or threads: what it calls is libm's
    // and the memory functions compilers call for copies.
    std::set<std::string> undefined = undefinedSymbols(object);
    for (const std::string &name : undefined) {
      INFO(name);
      for (const char *forbidden : {"malloc", "calloc", "realloc", "_Znw", "_Zna", "fopen",
                                    "printf", "puts", "write", "__cxa_throw",
                                    "__cxa_allocate_exception", "pthread", "nnc_parallel_for"})
        CHECK(name.find(forbidden) == std::string::npos);
      static const std::set<std::string> allowed = {
          "exp",  "expf",  "log",  "logf", "tanhf", "erff",   "sqrtf",  "fmaf",
          "powf", "cosf",  "floorf", "fmax", "memcpy", "memset", "memmove"};
      CHECK(allowed.count(name) == 1);
    }

    // Its predictions are nnc --predict's.
    std::ofstream(work + "/driver.cpp") << kDriver;
    std::string link = "cd '" + out + "' && g++ -std=c++17 -O2 -I. '" + work + "/driver.cpp' '" +
                       object + "' -o '" + work + "/driver' && '" + work + "/driver' < '" +
                       dir.path + "/images.f32' > '" + work + "/predictions.txt'";
    REQUIRE(std::system(link.c_str()) == 0);
    std::istringstream predictions(slurp(work + "/predictions.txt"));
    for (uint32_t i = 0; i < kImages; ++i) {
      INFO("test digit " << i);
      int library = -2;
      std::vector<double> p(10);
      predictions >> library;
      for (double &v : p)
        predictions >> v;
      REQUIRE(predictions);
      Run ours = nnc({nn, "--predict", dir.path + "/digit" + std::to_string(i) + ".pgm", "--json",
                      "--weights", weights});
      INFO(ours.err);
      REQUIRE(ours.status == 0);
      CHECK(ours.out.find("\"class\": " + std::to_string(library) + ",") != std::string::npos);
      size_t at = ours.out.find("\"probabilities\": [");
      REQUIRE(at != std::string::npos);
      std::istringstream expected(ours.out.substr(at + 18));
      for (int j = 0; j < 10; ++j) {
        double want = 0;
        char separator = 0;
        expected >> want >> separator;
        // The library's probabilities are nnc's doubles rounded to float.
        CHECK(std::abs(p[static_cast<size_t>(j)] - want) <= 1e-7 * want + 1e-12);
      }
    }
  }
}

TEST_CASE("the inference library refuses weights it cannot compile in, and usage mistakes") {
  TempDir dir;
  const std::string mnist = kSource + "/examples/mnist.nn";
  const std::string data = oneBatchOfDigits(dir), weights = dir.path + "/w.st";
  REQUIRE(nnc({mnist, "--train", "--epochs", "1", "--data", data, "--save", weights}).status == 0);

  Run other = nnc({kSource + "/examples/lenet.nn", "--emit-cpp", dir.path + "/a", "--inference",
                   "--weights", weights});
  CHECK(other.status == 1);
  CHECK(other.err.find(weights + ": the model has 'conv1.weight' but the checkpoint does not") !=
        std::string::npos);
  Run optimizer = nnc({mnist, "--emit-cpp", dir.path + "/b", "--inference", "--weights",
                       dir.path + "/w.optimizer.st"});
  CHECK(optimizer.status == 1);
  CHECK(optimizer.err.find("the optimizer state of a checkpoint, not its weights") !=
        std::string::npos);

  // A NaN among the weights is named, not compiled in.
  nnc_rt::Checkpoint ckpt;
  std::string why;
  REQUIRE(nnc_rt::loadSafetensors(weights, ckpt, why));
  std::vector<nnc_rt::TensorRef> tensors;
  for (nnc_rt::CheckpointTensor &t : ckpt.tensors) {
    if (t.name == "fc2.weight") {
      float nan = std::nanf("");
      std::memcpy(t.data.data() + 5 * sizeof(float), &nan, sizeof nan);
    }
    tensors.push_back({t.name, t.dtype, t.shape, t.data.data()});
  }
  const std::string broken = dir.path + "/nan.st";
  REQUIRE(nnc_rt::saveSafetensors(broken, tensors, ckpt.metadata, why));
  Run nan = nnc({mnist, "--emit-cpp", dir.path + "/c", "--inference", "--weights", broken});
  CHECK(nan.status == 1);
  CHECK(nan.err.find(broken + ": fc2.weight[5] is NaN") != std::string::npos);

  // Usage mistakes exit 2.
  for (std::vector<std::string> args :
       {std::vector<std::string>{mnist, "--inference"},
        {mnist, "--emit-cpp", dir.path + "/d", "--inference"},
        {mnist, "--emit-cpp", dir.path + "/d", "--weights", weights},
        {mnist, "--emit-cpp", dir.path + "/d", "--inference", "--weights", weights, "--batch",
         "8"}}) {
    Run r = nnc(args);
    INFO(r.err);
    CHECK(r.status == 2);
  }
}
