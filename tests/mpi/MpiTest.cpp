// MpiTest.cpp — `mpirun -np N nnc FILE --train` on this machine (loopback
// only), against one process training alone: N = 1 ends byte-identical, N = 2
// and 3 end within float-summation tolerance, every process holds the same
// parameters, --resume works with another N, and a process that dies or
// hangs ends the job with an error instead of a hang. Label `mpi`.
#include "Checkpoint.h"
#include "Idx.h"
#include "../cli/Process.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <regex>

using namespace nnc_rt;

namespace {

const std::string kSource = NNC_SOURCE_DIR;
const std::string kSlice = kSource + "/tests/data/mnist-slice";

/// mpirun -np N nnc ARGS, on this machine alone, `env` set in every process.
Run mpirun(int n, const std::vector<std::string> &args,
           const std::vector<std::string> &env = {}, const std::string &cwd = ".") {
  // --bind-to none: on a machine shared with other work, a process pinned to
  // a busy core stalls every step of the others
  std::vector<std::string> a{"--allow-run-as-root", "--oversubscribe", "--bind-to", "none",
                             "-np", std::to_string(n),
                             // loopback only: no network interface is tried
                             "--mca", "btl", "self,vader,tcp", "--mca", "btl_tcp_if_include",
                             "lo", "--mca", "oob_tcp_if_include", "lo"};
  for (const std::string &e : env)
    a.insert(a.end(), {"-x", e});
  a.push_back(NNC_BINARY);
  a.insert(a.end(), args.begin(), args.end());
  return run(NNC_MPIEXEC, a, cwd);
}

size_t count(const std::string &text, const std::string &what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
    ++n;
  return n;
}

Checkpoint load(const std::string &path) {
  Checkpoint c;
  std::string error;
  INFO(error);
  REQUIRE(loadSafetensors(path, c, error));
  return c;
}

/// Every f32 tensor of `got` against `want`: |got − want| ≤ tolerance ×
/// (the largest |want| of the tensor, at least 1). Returns the largest
/// such relative difference.
double compare(const std::string &wantPath, const std::string &gotPath, double tolerance) {
  Checkpoint want = load(wantPath), got = load(gotPath);
  REQUIRE(want.tensors.size() == got.tensors.size());
  double worst = 0;
  for (const CheckpointTensor &w : want.tensors) {
    if (w.dtype != DType::F32)
      continue;
    const CheckpointTensor *g = got.find(w.name);
    REQUIRE(g);
    REQUIRE(g->shape == w.shape);
    const auto *a = reinterpret_cast<const float *>(w.data.data());
    const auto *b = reinterpret_cast<const float *>(g->data.data());
    double scale = 1, diff = 0;
    for (int64_t i = 0; i < w.elementCount(); ++i) {
      scale = std::max(scale, double(std::fabs(a[i])));
      diff = std::max(diff, double(std::fabs(a[i] - b[i])));
    }
    INFO(w.name << ": largest difference " << diff << " at scale " << scale);
    CHECK(diff <= tolerance * scale);
    worst = std::max(worst, diff / scale);
  }
  return worst;
}

/// A 1-process run of `args`, then N-process runs; each of the latter must
/// report identical parameters on every process after each epoch and end
/// within `tolerance` of the former.
void matchOneProcess(const std::string &file, const std::vector<std::string> &args, int epochs,
                     double tolerance) {
  TempDir dir;
  std::vector<std::string> alone{file, "--train", "--save", dir.path + "/alone.safetensors"};
  alone.insert(alone.end(), args.begin(), args.end());
  Run one = nnc(alone);
  INFO(one.err);
  REQUIRE(one.status == 0);
  for (int n : {2, 3}) {
    INFO(file << " on " << n << " processes");
    std::string ours = dir.path + "/np" + std::to_string(n) + ".safetensors";
    std::vector<std::string> a{file, "--train", "--save", ours};
    a.insert(a.end(), args.begin(), args.end());
    Run r = mpirun(n, a);
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(count(r.err, "parameters identical on every process") == size_t(epochs));
    CHECK(count(r.err, "compiled ") == 1); // rank 0 alone prints
    CHECK(count(r.err, "train loss") == size_t(epochs));
    double worst = compare(dir.path + "/alone.safetensors", ours, tolerance);
    WARN(file << ", " << n << " processes: largest difference " << worst
              << " of the tensor's scale");
  }
}

/// The first `train` and `test` real digits of the committed slice, as raw
/// IDX files in `dir` (LeNet's naive convolutions make a whole epoch slow).
void firstDigits(const std::string &dir, int64_t train, int64_t test) {
  for (bool isTrain : {true, false}) {
    Dataset d;
    std::string error;
    INFO(error);
    REQUIRE(loadMnist(kSlice, isTrain, d, error));
    const int64_t n = isTrain ? train : test;
    REQUIRE(d.count >= n);
    const std::string prefix = dir + (isTrain ? "/train" : "/t10k");
    writeIdx(prefix + "-images-idx3-ubyte", {uint32_t(n), uint32_t(d.rows), uint32_t(d.cols)},
             std::vector<uint8_t>(d.images.begin(), d.images.begin() + n * d.rows * d.cols));
    writeIdx(prefix + "-labels-idx1-ubyte", {uint32_t(n)},
             std::vector<uint8_t>(d.labels.begin(), d.labels.begin() + n));
  }
}

} // namespace

TEST_CASE("one process under mpirun trains to the bytes of nnc alone", "[mpi]") {
  TempDir dir;
  std::vector<std::string> args{kSource + "/examples/mnist.nn", "--train", "--data", kSlice,
                                "--epochs", "1", "--save"};
  std::vector<std::string> alone = args, under = args;
  alone.push_back(dir.path + "/alone.safetensors");
  under.push_back(dir.path + "/np1.safetensors");
  Run a = nnc(alone), b = mpirun(1, under);
  INFO(a.err << b.err);
  REQUIRE(a.status == 0);
  REQUIRE(b.status == 0);
  CHECK(slurp(dir.path + "/alone.safetensors") == slurp(dir.path + "/np1.safetensors"));
  CHECK(slurp(dir.path + "/alone.optimizer.safetensors") ==
        slurp(dir.path + "/np1.optimizer.safetensors"));
  // and the same report, line for line, but for the timings
  static const std::regex timing("[0-9.]+ s +[0-9,]+ img/s");
  auto epochLine = [](const std::string &err) {
    std::smatch m;
    std::regex_search(err, m, std::regex("epoch 1/1 [^\n]*"));
    return std::regex_replace(m.str(), timing, "");
  };
  CHECK(epochLine(a.err) == epochLine(b.err));
  CHECK_FALSE(epochLine(a.err).empty());
}

TEST_CASE("2 and 3 processes match one process with the same global batch", "[mpi]") {
  // mnist.nn (Adam): one epoch of the committed slice, 31 batches of 64 and
  // one of 16, split 32/32 and 8/8 on 2 processes, 22/21/21 and 6/5/5 on 3.
  // lenet.nn (SGD with momentum, cosine schedule): 9 steps. The gradients
  // are summed in another order, so the weights differ by float rounding
  // grown over the steps (measured: at most 4.1e-7 of the tensor's scale).
  SECTION("mnist.nn") {
    matchOneProcess(kSource + "/examples/mnist.nn", {"--data", kSlice, "--epochs", "1"}, 1, 1e-5);
  }
  SECTION("lenet.nn") { // on the first 520 digits: 8 batches of 64 and one of 8
    TempDir data;
    firstDigits(data.path, 520, 100);
    matchOneProcess(kSource + "/examples/lenet.nn", {"--data", data.path, "--epochs", "1"}, 1,
                    1e-5);
  }
}

TEST_CASE("dropout draws in each process the masks of its examples in one process", "[mpi]") {
  // mnist.nn with dropout after each hidden layer: the shares of 32/32 and
  // 22/21/21 examples must drop what one process drops for those examples,
  // or the weights part after the first step.
  TempDir dir;
  std::string text;
  {
    std::ifstream in(kSource + "/examples/mnist.nn");
    std::stringstream s;
    s << in.rdbuf();
    text = s.str();
  }
  for (const char *layer : {"fc1: dense(64) -> relu", "fc2: dense(64) -> relu"}) {
    size_t at = text.find(layer);
    REQUIRE(at != std::string::npos);
    text.insert(at + std::string(layer).size(), " -> dropout(0.3)");
  }
  const std::string file = dir.path + "/dropout.nn";
  std::ofstream(file) << text;
  matchOneProcess(file, {"--data", kSlice, "--epochs", "1"}, 1, 1e-5);
}

TEST_CASE("shares of different sizes, and empty ones, give the batch's gradient", "[mpi]") {
  // Batches of 2 on 3 processes: shares of 1, 1 and 0 examples; 2,000
  // images in 1,000 steps is too slow, so 40 of them (--batch keeps the
  // program's model), then the last batch of 40 % 3 = 1 with --batch 3.
  TempDir data;
  std::vector<uint8_t> images(40 * 784), labels(40);
  for (size_t i = 0; i < images.size(); ++i)
    images[i] = static_cast<uint8_t>((i * 37) % 251);
  for (size_t i = 0; i < labels.size(); ++i)
    labels[i] = static_cast<uint8_t>(i % 10);
  for (const char *split : {"train", "t10k"}) {
    writeIdx(data.path + "/" + split + "-images-idx3-ubyte", {40, 28, 28}, images);
    writeIdx(data.path + "/" + split + "-labels-idx1-ubyte", {40}, labels);
  }
  for (const char *batch : {"2", "3"}) {
    INFO("batch " << batch);
    matchOneProcess(kSource + "/examples/mnist.nn",
                    {"--data", data.path, "--epochs", "2", "--batch", batch}, 2, 1e-5);
  }
}

TEST_CASE("resuming continues with another number of processes", "[mpi]") {
  TempDir dir;
  const std::string file = kSource + "/examples/mnist.nn";
  std::vector<std::string> common{file, "--train", "--data", kSlice, "--epochs", "2"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = common;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  Run first = mpirun(2, with({"--stop-after-epoch", "1", "--save", dir.path + "/e1.safetensors"}));
  INFO(first.err);
  REQUIRE(first.status == 0);
  CHECK(first.err.find("stopped after epoch 1 of 2") != std::string::npos);
  Run on3 = mpirun(3, with({"--resume", dir.path + "/e1.safetensors", "--save",
                            dir.path + "/np3.safetensors"}));
  INFO(on3.err);
  REQUIRE(on3.status == 0);
  CHECK(on3.err.find("resuming from " + dir.path + "/e1.safetensors after epoch 1") !=
        std::string::npos);
  CHECK(count(on3.err, "train loss") == 1);
  Run alone = nnc(with({"--resume", dir.path + "/e1.safetensors", "--save",
                        dir.path + "/alone.safetensors"}));
  INFO(alone.err);
  REQUIRE(alone.status == 0);
  compare(dir.path + "/alone.safetensors", dir.path + "/np3.safetensors", 1e-5);
  Checkpoint c = load(dir.path + "/np3.safetensors");
  CHECK(c.metadata.at("epoch") == "2");
}

TEST_CASE("a process that dies ends the job with an error, not a hang", "[mpi]") {
  Run r = mpirun(3, {kSource + "/examples/mnist.nn", "--train", "--data", kSlice},
                 {"NNC_TEST_MPI_FAULT=die:1:5"});
  INFO(r.err);
  CHECK(r.status != 0);
  CHECK(r.seconds < 60);
  CHECK(r.err.find("process rank 1") != std::string::npos);
  CHECK(r.err.find("signal 9") != std::string::npos);
  CHECK(r.err.find("epoch 1/10") == std::string::npos); // it never finished an epoch
}

TEST_CASE("a process that hangs ends the job after NNC_MPI_TIMEOUT", "[mpi]") {
  Run r = mpirun(2, {kSource + "/examples/mnist.nn", "--train", "--data", kSlice},
                 {"NNC_TEST_MPI_FAULT=hang:1:5", "NNC_MPI_TIMEOUT=10"});
  INFO(r.err);
  CHECK(r.status != 0);
  CHECK(r.seconds < 60);
  CHECK(r.err.find("nnc: error: process 0 of 2: no answer from the other processes after 10 s "
                   "while summing the gradients of step 5: a process has died or hangs") !=
        std::string::npos);
}

TEST_CASE("an error every process meets is reported once", "[mpi]") {
  TempDir dir;
  Run r = mpirun(3, {kSource + "/examples/mnist.nn", "--train", "--data", dir.path + "/none"});
  INFO(r.err);
  CHECK(r.status == 1);
  CHECK(count(r.err, "error:") == 1);
  CHECK(r.err.find(dir.path + "/none") != std::string::npos);
  CHECK(r.err.find("MPI_ABORT") == std::string::npos); // every process ended by itself
}

TEST_CASE("the memory cap counts the halves of the step the processes run", "[mpi]") {
  // mnist.nn needs 4.64 MiB alone (training step and prediction; the slice's
  // data 1.9 MiB more) and 4.62 MiB more for grad_step and apply_update,
  // which data-parallel training runs.
  TempDir dir;
  std::vector<std::string> args{kSource + "/examples/mnist.nn", "--train", "--epochs", "1",
                                "--data", kSlice, "--max-memory", "8M"};
  Run alone = nnc(args);
  INFO(alone.err);
  CHECK(alone.status == 0);
  Run r = mpirun(2, args);
  INFO(r.err);
  CHECK(r.status == 1);
  CHECK(count(r.err, "error:") == 1);
  CHECK(r.err.find("its two halves' (data-parallel)") != std::string::npos);
  CHECK(r.err.find("more than the 8.00 MiB nnc may use (--max-memory)") != std::string::npos);
}
