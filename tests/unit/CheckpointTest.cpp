// CheckpointTest.cpp — safetensors checkpoints: round trips, the exact bytes
// of the format, atomic writes, every kind of bad file refused with its name
// and the reason (never a crash or a read past the end), the check against
// the model's tensors, and a cross-check with an independent reader and
// writer in Python and PyTorch (tests/torch/checkpoint.py).
#include "Checkpoint.h"
#include "Training.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <iterator>
#include <limits>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace nnc_rt;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/nnc-ckpt-XXXXXX";
    char *made = ::mkdtemp(tmpl);
    REQUIRE(made != nullptr);
    path = made;
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    if (DIR *d = ::opendir(path.c_str())) {
      while (dirent *e = ::readdir(d))
        if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
          names.push_back(e->d_name);
      ::closedir(d);
    }
    std::sort(names.begin(), names.end());
    return names;
  }
};

std::string readBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void writeBytes(const std::string &path, const std::string &bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<long>(bytes.size()));
}

std::string le64(uint64_t v) {
  std::string s;
  for (int k = 0; k < 8; ++k)
    s += static_cast<char>(v >> (8 * k));
  return s;
}

/// A safetensors file: the header size (by default the header's length),
/// the header and the data.
std::string file(const std::string &header, const std::string &data = "",
                 uint64_t headerSize = ~uint64_t(0)) {
  return le64(headerSize == ~uint64_t(0) ? header.size() : headerSize) + header + data;
}

template <class T> std::vector<uint8_t> bytesOf(const std::vector<T> &values) {
  std::vector<uint8_t> b(values.size() * sizeof(T));
  if (!b.empty())
    std::memcpy(b.data(), values.data(), b.size());
  return b;
}

template <class T> std::vector<T> valuesOf(const CheckpointTensor &t) {
  REQUIRE(t.data.size() % sizeof(T) == 0);
  std::vector<T> v(t.data.size() / sizeof(T));
  if (!v.empty())
    std::memcpy(v.data(), t.data.data(), t.data.size());
  return v;
}

bool save(const std::string &path, const std::vector<TensorRef> &tensors,
          const std::map<std::string, std::string> &metadata = {}) {
  std::string error;
  bool ok = saveSafetensors(path, tensors, metadata, error);
  INFO(error);
  CHECK(ok);
  CHECK(error.empty());
  return ok;
}

std::string loadError(const std::string &path) {
  Checkpoint c;
  std::string error;
  CHECK_FALSE(loadSafetensors(path, c, error));
  return error;
}

// The tensors the round trip and the PyTorch cross-check write (keep in
// step with tests/torch/checkpoint.py).
const std::vector<float> kWeight = {0.5f, -1.25f, 3.0f, 0.1f, -0.0f, 1e30f};
const std::vector<float> kBias = {1.0f, -2.0f, 0.25f};
const std::vector<int64_t> kStep = {1234567890123};
const std::vector<int64_t> kCounts = {-1, 0, (int64_t(1) << 53) + 1,
                                      std::numeric_limits<int64_t>::min()};
const std::map<std::string, std::string> kMetadata = {
    {"step", "12"},
    {"epoch", "3"},
    {"seed", "42"},
    {"fingerprint", "sha256:0123abcd"},
    {"note", "tab\there \"quoted\" back\\slash\nnewline \xc3\xa9 \xe6\xbc\xa2\xe5\xad\x97 "
             "\xf0\x9f\x98\x80 \x01 \x7f end"},
    {"k\xc3\xa9y \"with\" escapes\n", "\xe2\x9c\x93"},
};

std::vector<TensorRef> modelTensors() {
  return {
      {"layer.weight", DType::F32, {2, 3}, kWeight.data()}, {"step", DType::I64, {}, kStep.data()},
      {"layer.bias", DType::F32, {3}, kBias.data()},        {"empty", DType::F32, {0, 4}, nullptr},
      {"counts", DType::I64, {4}, kCounts.data()},
  };
}

void checkModelTensors(const Checkpoint &c) {
  REQUIRE(c.tensors.size() == 5);
  const CheckpointTensor *w = c.find("layer.weight");
  REQUIRE(w != nullptr);
  CHECK(w->dtype == DType::F32);
  CHECK(w->shape == std::vector<int64_t>{2, 3});
  CHECK(w->elementCount() == 6);
  CHECK(w->data == bytesOf(kWeight)); // bit for bit, including -0.0
  const CheckpointTensor *b = c.find("layer.bias");
  REQUIRE(b != nullptr);
  CHECK(valuesOf<float>(*b) == kBias);
  const CheckpointTensor *step = c.find("step");
  REQUIRE(step != nullptr);
  CHECK(step->dtype == DType::I64);
  CHECK(step->shape.empty());
  CHECK(step->elementCount() == 1);
  CHECK(valuesOf<int64_t>(*step) == kStep);
  const CheckpointTensor *counts = c.find("counts");
  REQUIRE(counts != nullptr);
  CHECK(valuesOf<int64_t>(*counts) == kCounts);
  const CheckpointTensor *empty = c.find("empty");
  REQUIRE(empty != nullptr);
  CHECK(empty->shape == std::vector<int64_t>{0, 4});
  CHECK(empty->elementCount() == 0);
  CHECK(empty->data.empty());
  CHECK(c.find("missing") == nullptr);
  CHECK(c.metadata == kMetadata);
}

} // namespace

TEST_CASE("Checkpoint: F32 and I64 tensors, scalars, empty tensors and metadata round-trip",
          "[checkpoint]") {
  TempDir dir;
  std::string path = dir.path + "/model.safetensors";
  REQUIRE(save(path, modelTensors(), kMetadata));
  Checkpoint c;
  std::string error;
  REQUIRE(loadSafetensors(path, c, error));
  CHECK(error.empty());
  CHECK(c.path == path);
  checkModelTensors(c);
  // The header lists tensors as the reference writer does: I64 before F32,
  // then by name.
  std::vector<std::string> names;
  for (const CheckpointTensor &t : c.tensors)
    names.push_back(t.name);
  CHECK(names == std::vector<std::string>{"counts", "step", "empty", "layer.bias", "layer.weight"});

  // Every other dtype nnc reads, and no tensors at all.
  const std::vector<double> f64 = {1.5, -1e-300, std::numeric_limits<double>::infinity()};
  const std::vector<int32_t> i32 = {-7, std::numeric_limits<int32_t>::max()};
  const std::vector<uint8_t> u8 = {0, 1, 127, 128, 255};
  std::string other = dir.path + "/other.safetensors";
  REQUIRE(save(other, {{"u", DType::U8, {5}, u8.data()},
                       {"d", DType::F64, {3, 1}, f64.data()},
                       {"i", DType::I32, {2}, i32.data()}}));
  REQUIRE(loadSafetensors(other, c, error));
  REQUIRE(c.tensors.size() == 3);
  CHECK(c.tensors[0].name == "d"); // F64, F32/I32, U8: alignment descending
  CHECK(valuesOf<double>(c.tensors[0]) == f64);
  CHECK(c.tensors[1].name == "i");
  CHECK(valuesOf<int32_t>(c.tensors[1]) == i32);
  CHECK(c.tensors[2].name == "u");
  CHECK(c.tensors[2].data == u8);
  CHECK(c.metadata.empty());
  std::string none = dir.path + "/none.safetensors";
  REQUIRE(save(none, {}));
  REQUIRE(loadSafetensors(none, c, error));
  CHECK(c.tensors.empty());
  CHECK(c.metadata.empty());
}

TEST_CASE("Checkpoint: the bytes of a file are exactly the format's", "[checkpoint]") {
  TempDir dir;
  std::string path = dir.path + "/tiny.safetensors";

  // Hand-computed: the header is 153 bytes of JSON, padded with 7 spaces to
  // 160 (0xA0); "a" (I64) comes before "w1" (F32) though given after it;
  // the metadata value escaped as serde_json does (\" \\ \n \t \u0001; 0x7F,
  // '/' and UTF-8 as they are).
  const std::vector<float> w1 = {1.0f, -2.0f};
  const std::vector<int64_t> a = {5};
  REQUIRE(save(path, {{"w1", DType::F32, {2}, w1.data()}, {"a", DType::I64, {}, a.data()}},
               {{"k", "q\"b\\s\n\t\x01\x7f/\xc3\xa9"}}));
  std::string json = R"({"__metadata__":{"k":"q\"b\\s\n\t\u0001)"
                     "\x7f"
                     R"(/)"
                     "\xc3\xa9"
                     R"("},"a":{"dtype":"I64","shape":[],"data_offsets":[0,8]},)"
                     R"("w1":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})";
  REQUIRE(json.size() == 153);
  std::string expected = std::string("\xA0\0\0\0\0\0\0\0", 8) + json + "       " +
                         std::string("\x05\0\0\0\0\0\0\0", 8) +
                         std::string("\0\0\x80\x3F\0\0\0\xC0", 8);
  CHECK(readBytes(path) == expected);

  // The reference implementation's own test vectors (safetensors/src/tensor.rs).
  REQUIRE(save(path, {}));
  CHECK(readBytes(path) == std::string("\x08\0\0\0\0\0\0\0{}      ", 16));
  REQUIRE(save(path, {}, {{"framework", "pt"}}));
  CHECK(readBytes(path) ==
        std::string("\x28\0\0\0\0\0\0\0", 8) + R"({"__metadata__":{"framework":"pt"}})" + "     ");
  const std::vector<float> attn = {0, 1, 2, 3, 4, 5};
  REQUIRE(save(path, {{"attn0", DType::F32, {1, 1, 2, 3}, attn.data()}}));
  const uint8_t reference[] = {
      72,  0,   0,   0,   0,   0,   0,   0,   123, 34, 97, 116, 116, 110, 48,  34,  58,  123,
      34,  100, 116, 121, 112, 101, 34,  58,  34,  70, 51, 50,  34,  44,  34,  115, 104, 97,
      112, 101, 34,  58,  91,  49,  44,  49,  44,  50, 44, 51,  93,  44,  34,  100, 97,  116,
      97,  95,  111, 102, 102, 115, 101, 116, 115, 34, 58, 91,  48,  44,  50,  52,  93,  125,
      125, 32,  32,  32,  32,  32,  32,  32,  0,   0,  0,  0,   0,   0,   128, 63,  0,   0,
      0,   64,  0,   0,   64,  64,  0,   0,   128, 64, 0,  0,   160, 64};
  CHECK(readBytes(path) ==
        std::string(reinterpret_cast<const char *>(reference), sizeof reference));
}

TEST_CASE("Checkpoint: writing replaces the file atomically and leaves no temporary file",
          "[checkpoint]") {
  TempDir dir;
  std::string path = dir.path + "/ckpt.safetensors";
  writeBytes(path, "an older file, not even a checkpoint");
  struct stat before {};
  REQUIRE(::stat(path.c_str(), &before) == 0);
  const std::vector<float> v = {1, 2, 3};
  REQUIRE(save(path, {{"v", DType::F32, {3}, v.data()}}, {{"step", "1"}}));
  struct stat after {};
  REQUIRE(::stat(path.c_str(), &after) == 0);
  // A new file renamed into place, not the old one rewritten.
  CHECK(after.st_ino != before.st_ino);
  CHECK(dir.entries() == std::vector<std::string>{"ckpt.safetensors"});
  Checkpoint c;
  std::string error;
  REQUIRE(loadSafetensors(path, c, error));
  CHECK(c.metadata.at("step") == "1");

  // Written again: replaced, still one file.
  const std::vector<float> w = {4, 5};
  REQUIRE(save(path, {{"v", DType::F32, {2}, w.data()}}, {{"step", "2"}}));
  REQUIRE(loadSafetensors(path, c, error));
  CHECK(c.metadata.at("step") == "2");
  CHECK(valuesOf<float>(c.tensors.at(0)) == w);
  CHECK(dir.entries() == std::vector<std::string>{"ckpt.safetensors"});

  // A failed write leaves the old file as it was.
  std::string old = readBytes(path);
  CHECK_FALSE(saveSafetensors(path, {{"v", DType::F32, {-1}, w.data()}}, {}, error));
  CHECK(readBytes(path) == old);
  CHECK(dir.entries() == std::vector<std::string>{"ckpt.safetensors"});
}

TEST_CASE("Checkpoint: a pair of files is written in full before either is replaced",
          "[checkpoint]") {
  TempDir dir;
  std::string a = dir.path + "/a.st", b = dir.path + "/b.st";
  const std::vector<float> small = {1, 2}, large(4096, 3.0f);
  std::string error;
  REQUIRE(saveSafetensorsFiles({{a, {{"v", DType::F32, {2}, small.data()}}, {}},
                                {b, {{"v", DType::F32, {2}, small.data()}}, {}}},
                               error));
  const std::string oldA = readBytes(a), oldB = readBytes(b);
  // The second file cannot be written (a file-size limit, as a full disk
  // would): the first, already complete, is not renamed either.
  struct rlimit before {};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &before) == 0);
  void (*oldHandler)(int) = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit limit = before;
  limit.rlim_cur = 8192;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &limit) == 0);
  bool saved = saveSafetensorsFiles({{a, {{"v", DType::F32, {2}, small.data()}}, {{"k", "new"}}},
                                     {b, {{"v", DType::F32, {4096}, large.data()}}, {}}},
                                    error);
  ::setrlimit(RLIMIT_FSIZE, &before);
  std::signal(SIGXFSZ, oldHandler);
  CHECK_FALSE(saved);
  CHECK(error == b + ": cannot write it (nothing was replaced): File too large");
  CHECK(readBytes(a) == oldA);
  CHECK(readBytes(b) == oldB);
  CHECK(dir.entries() == std::vector<std::string>{"a.st", "b.st"});
}

TEST_CASE("Checkpoint: failed writes say why, and leave nothing behind", "[checkpoint]") {
  TempDir dir;
  const std::vector<float> v = {1, 2};
  std::string error;

  std::string missing = dir.path + "/no/such/dir/ckpt.safetensors";
  CHECK_FALSE(saveSafetensors(missing, {{"v", DType::F32, {2}, v.data()}}, {}, error));
  INFO(error);
  CHECK(error == missing + ": cannot create a temporary file in " + dir.path +
                     "/no/such/dir: No such file or directory");

  // The target is a directory: the temporary file is written, the rename
  // fails, and the temporary file is removed.
  std::string target = dir.path + "/taken";
  REQUIRE(::mkdir(target.c_str(), 0755) == 0);
  REQUIRE(::mkdir((target + "/inside").c_str(), 0755) == 0);
  CHECK_FALSE(saveSafetensors(target, {{"v", DType::F32, {2}, v.data()}}, {}, error));
  CHECK(error.rfind(target + ": cannot rename the temporary file over it: ", 0) == 0);
  CHECK(dir.entries() == std::vector<std::string>{"taken"});

  // Refused before any file is created.
  std::string path = dir.path + "/bad.safetensors";
  auto refused = [&](const std::vector<TensorRef> &tensors,
                     const std::map<std::string, std::string> &metadata) {
    std::string e;
    CHECK_FALSE(saveSafetensors(path, tensors, metadata, e));
    CHECK(e.rfind(path + ": ", 0) == 0);
    CHECK(dir.entries() == std::vector<std::string>{"taken"});
    return e;
  };
  CHECK(refused({{"v", DType::F32, {2}, v.data()}, {"v", DType::F32, {1}, v.data()}}, {}) ==
        path + ": two tensors are named 'v'");
  CHECK(refused({{"v", DType::F32, {2, -1}, v.data()}}, {}) ==
        path + ": tensor 'v' has a negative dimension in its shape [2, -1]");
  CHECK(refused({{"v", DType::F32, {int64_t(1) << 62, 4}, v.data()}}, {}) ==
        path + ": tensor 'v' has shape [4611686018427387904, 4] of F32, whose size in bytes "
               "does not fit in 64 bits");
  CHECK(refused({{"v", DType::F32, {2}, nullptr}}, {}) ==
        path + ": tensor 'v' has shape [2] but no data");
  CHECK(refused({{"__metadata__", DType::F32, {2}, v.data()}}, {}) ==
        path + ": a tensor cannot be named '__metadata__': the format reserves that key");
  CHECK(refused({{"bad\xff", DType::F32, {2}, v.data()}}, {}).find("is not valid UTF-8") !=
        std::string::npos);
  CHECK(refused({}, {{"k", "\xc3"}}) == path + ": metadata 'k' is not valid UTF-8");
}

TEST_CASE("Checkpoint: every kind of bad file is refused with its name and the reason",
          "[checkpoint]") {
  TempDir dir;
  int n = 0;
  auto check = [&](const std::string &bytes, const std::string &reason) {
    std::string path = dir.path + "/bad" + std::to_string(n++) + ".safetensors";
    writeBytes(path, bytes);
    std::string error = loadError(path);
    INFO(error);
    CHECK(error.rfind(path + ": ", 0) == 0);
    CHECK(error.find(reason) != std::string::npos);
  };
  const std::string w8 = std::string(8, '\1'); // 8 bytes of data
  auto tensor = [](const std::string &name, const std::string &body) {
    return "\"" + name + "\":{" + body + "}";
  };
  auto one = [&](const std::string &body) { return "{" + tensor("w", body) + "}"; };

  // The file and its header size.
  check("", "is empty");
  check("abcde", "is too short to be a safetensors file: it has 5 bytes, and the header size "
                 "alone takes 8");
  check(file("{}      ", "", 100), "is truncated: its header size field says 100 bytes but only "
                                   "8 follow it");
  check(file("{}", "", uint64_t(1) << 40), "its header size field says 1099511627776 bytes, more "
                                           "than the limit of 100000000");
  check(file("", ""), "the header is empty");

  // The header as JSON.
  check(file("{not json}"), "the header is not valid JSON: expected a string (an object key), "
                            "found 'n' (byte 1 of the header)");
  check(file(R"({"a":1,})"), "the header is not valid JSON: expected a string (an object key), "
                             "found '}' (byte 7 of the header)");
  check(file(R"({"a":{"dtype":"F32")"), "the header is not valid JSON: expected ',' or '}' after "
                                        "an object member, found the end of the header");
  check(file(R"({"a":[01]})"), "a number has a leading zero");
  check(file("{} x"), "expected the end of the header after its top-level value, found 'x'");
  check(file("{\"a\nb\":1}"), "a control character inside a string must be escaped");
  check(file(R"({"\x":1})"), "an invalid escape in a string");
  check(file(R"({"\ud83d":1})"), "a high surrogate not followed by a low one");
  check(file(R"({"\ude00":1})"), "a lone low surrogate");
  check(file(R"({"\u12g4":1})"), "four hexadecimal digits");
  check(file("{\"\xc3\x28\":1}"), "the header is not valid UTF-8 (byte 2 of the header)");
  check(file("{\"\xed\xa0\x80\":1}"), "the header is not valid UTF-8"); // an encoded surrogate
  check(file("{\"\xc0\xaf\":1}"), "the header is not valid UTF-8");     // an overlong '/'
  check(file("[1,2]"), "the header is JSON but not an object: it is an array");
  check(file("\"{}\""), "the header is JSON but not an object: it is a string");
  check(file(" {}"),
        "the header begins with whitespace; the format requires '{' as its first byte");
  std::string deep = "{\"w\":" + std::string(200, '[') + std::string(200, ']') + "}";
  check(file(deep), "the header nests objects and arrays more than 64 deep (byte 68 of the "
                    "header)");

  // Each tensor's description.
  check(file(one(R"("shape":[2],"data_offsets":[0,8])"), w8), "tensor 'w' has no dtype");
  check(file(one(R"("dtype":"F32","data_offsets":[0,8])"), w8), "tensor 'w' has no shape");
  check(file(one(R"("dtype":"F32","shape":[2])"), w8), "tensor 'w' has no data_offsets");
  check(file(one(R"("dtype":"BF16","shape":[4],"data_offsets":[0,8])"), w8),
        "tensor 'w' has dtype 'BF16', which nnc does not read (it reads F32, F64, I32, I64 and "
        "U8)");
  check(file(one(R"("dtype":32,"shape":[2],"data_offsets":[0,8])"), w8),
        "tensor 'w' has a dtype that is a number, not a string");
  check(file(one(R"("dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1)"), w8),
        "tensor 'w' has an unexpected key 'x'; a tensor has exactly dtype, shape and "
        "data_offsets");
  check(file(one(R"("dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8])"), w8),
        "tensor 'w' has \"dtype\" twice");
  check(file(one(R"("dtype":"F32","shape":[2,-2],"data_offsets":[0,8])"), w8),
        "tensor 'w' has a negative number -2 in its shape");
  check(file(one(R"("dtype":"F32","shape":[2.0],"data_offsets":[0,8])"), w8),
        "tensor 'w' has 2.0 in its shape, which is not an integer");
  check(file(one(R"("dtype":"F32","shape":["2"],"data_offsets":[0,8])"), w8),
        "tensor 'w' has a string in its shape, not an integer");
  check(file(one(R"("dtype":"F32","shape":2,"data_offsets":[0,8])"), w8),
        "tensor 'w' has a shape that is a number, not an array");
  check(file(one(R"("dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,8])"), w8),
        "tensor 'w' has 9223372036854775808 in its shape, which is too large");
  check(file(one(R"("dtype":"F32","shape":[4294967296,4294967296],)"
                 R"("data_offsets":[0,8])"),
             w8),
        "tensor 'w' has shape [4294967296, 4294967296] of F32, whose size in bytes does not fit "
        "in 64 bits");
  std::string dims65 = "1";
  for (int i = 1; i < 65; ++i)
    dims65 += ",1";
  check(file(one(R"("dtype":"F32","shape":[)" + dims65 + R"(],"data_offsets":[0,4])"),
             std::string(4, '\0')),
        "tensor 'w' has more than 64 dimensions");
  check(file(one(R"("dtype":"F32","shape":[2],"data_offsets":[0])"), w8),
        "tensor 'w' has only one data_offsets; it needs [begin, end]");
  check(file(one(R"("dtype":"F32","shape":[2],"data_offsets":[0,8,8])"), w8),
        "tensor 'w' has more than two data_offsets");
  check(file(one(R"("dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551616])"), w8),
        "tensor 'w' has 18446744073709551616 in its data_offsets, which is too large");
  check(file(R"({"w":[0,8]})", w8), "tensor 'w' is described by an array, not an object");
  check(file("{" + tensor("w", R"("dtype":"F32","shape":[2],"data_offsets":[0,8])") + "," +
                 tensor("w", R"("dtype":"F32","shape":[2],"data_offsets":[0,8])") + "}",
             w8),
        "tensor 'w' appears twice in the header");

  // Sizes and offsets.
  check(file(one(R"("dtype":"F32","shape":[2,3],"data_offsets":[0,20])"), std::string(20, '\0')),
        "tensor 'w' has shape [2, 3] of F32, which takes 24 bytes, but its data_offsets [0, 20] "
        "hold 20");
  check(file(one(R"("dtype":"F32","shape":[0],"data_offsets":[8,0])"), w8),
        "tensor 'w' has data_offsets [8, 0], which end before they begin");
  check(file(one(R"("dtype":"F32","shape":[2],"data_offsets":[100,108])"), w8),
        "tensor 'w' (data_offsets [100, 108]) lies beyond the end of the data, which is 8 bytes "
        "long");
  check(file("{" + tensor("a", R"("dtype":"F32","shape":[2],"data_offsets":[0,8])") + "," +
                 tensor("b", R"("dtype":"F32","shape":[1],"data_offsets":[4,8])") + "}",
             std::string(12, '\0')),
        "tensors 'a' (data_offsets [0, 8]) and 'b' (data_offsets [4, 8]) overlap");
  check(file("{" + tensor("b", R"("dtype":"F32","shape":[1],"data_offsets":[8,12])") + "," +
                 tensor("a", R"("dtype":"F32","shape":[1],"data_offsets":[0,4])") + "}",
             std::string(12, '\0')),
        "no tensor holds bytes [4, 8] of the data (between 'a' (data_offsets [0, 4]) and 'b' "
        "(data_offsets [8, 12]))");
  check(file("{" + tensor("a", R"("dtype":"F32","shape":[1],"data_offsets":[4,8])") + "}", w8),
        "no tensor holds bytes [0, 4] of the data (before 'a' (data_offsets [4, 8]))");
  check(file("{" + tensor("a", R"("dtype":"F32","shape":[1],"data_offsets":[0,4])") + "}",
             std::string(7, '\0')),
        "no tensor holds the last 3 bytes of the file (the tensors' data ends at byte 4 of the 7 "
        "after the header)");
  check(file("{}", "x"), "no tensor holds the last 1 byte of the file");

  // The metadata.
  check(file(R"({"__metadata__":{"step":12}})"), "metadata 'step' is a number, not a string");
  check(file(R"({"__metadata__":["step"]})"),
        "\"__metadata__\" is an array, not an object of strings");
  check(file(R"({"__metadata__":{"a":"1","a":"2"}})"), "metadata 'a' appears twice");
  check(file(R"({"__metadata__":{},"__metadata__":{}})"), "the header has \"__metadata__\" twice");

  // Truncated data: a good file cut short.
  std::string good = dir.path + "/good.safetensors";
  const std::vector<float> v = {1, 2, 3, 4, 5, 6};
  REQUIRE(save(good, {{"w", DType::F32, {2, 3}, v.data()}}));
  std::string bytes = readBytes(good);
  check(bytes.substr(0, bytes.size() - 3),
        "is truncated: its header describes 24 bytes of tensor data but only 21 follow the "
        "header");

  // Not a file.
  std::string error = loadError(dir.path + "/missing.safetensors");
  CHECK(error == dir.path + "/missing.safetensors: No such file or directory");
  error = loadError(dir.path);
  CHECK(error == dir.path + ": is a directory, not a safetensors file");
}

TEST_CASE("Checkpoint: names in messages are escaped and cut short", "[checkpoint]") {
  TempDir dir;
  std::string path = dir.path + "/names.safetensors";
  std::string longName(300, 'n');
  writeBytes(path, file(R"({"a\nb":{"dtype":"F16","shape":[1],"data_offsets":[0,2]},)"
                        R"(")" +
                            longName + R"(":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}})",
                        std::string(6, '\0')));
  CHECK(loadError(path) == path + ": tensor 'a\\nb' has dtype 'F16', which nnc does not read (it "
                                  "reads F32, F64, I32, I64 and U8)");
  writeBytes(path, file("{\"" + longName + R"(":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}})",
                        std::string(2, '\0')));
  CHECK(loadError(path) == path + ": tensor '" + std::string(80, 'n') +
                               "...' has dtype 'F16', which nnc does not read (it reads F32, F64, "
                               "I32, I64 and U8)");
}

TEST_CASE("Checkpoint: the reader accepts what the format allows", "[checkpoint]") {
  TempDir dir;
  std::string path = dir.path + "/ok.safetensors";
  // Keys and tensors in any order, whitespace inside and after the JSON, no
  // padding, escapes (a surrogate pair among them) in names and metadata,
  // -0 as a dimension, an empty tensor.
  std::string header =
      "{ \"z\" : { \"data_offsets\" : [ 0 , 4 ] , \"shape\" : [ 1 ] , \"dtype\" : \"I32\" } ,"
      "\n\t\"\\u00e9\\ud83d\\ude00\\n\\/\": {\"shape\": [], \"dtype\": \"U8\", "
      "\"data_offsets\": [4, 5]}, \"__metadata__\": {\"k\": \"\\\"\\\\\\b\\f\\r\\t\\u0041\"}, "
      "\"e\": {\"dtype\": \"F64\", \"shape\": [3, -0], \"data_offsets\": [4, 4]}}\r\n  ";
  writeBytes(path, file(header, std::string("\x07\0\0\0\x2a", 5)));
  Checkpoint c;
  std::string error;
  REQUIRE(loadSafetensors(path, c, error));
  REQUIRE(c.tensors.size() == 3);
  CHECK(c.tensors[0].name == "z");
  CHECK(c.tensors[0].dtype == DType::I32);
  CHECK(valuesOf<int32_t>(c.tensors[0]) == std::vector<int32_t>{7});
  CHECK(c.tensors[1].name == "\xc3\xa9\xf0\x9f\x98\x80\n/");
  CHECK(c.tensors[1].dtype == DType::U8);
  CHECK(c.tensors[1].shape.empty());
  CHECK(c.tensors[1].data == std::vector<uint8_t>{42});
  CHECK(c.tensors[2].name == "e");
  CHECK(c.tensors[2].shape == std::vector<int64_t>{3, 0});
  CHECK(c.tensors[2].data.empty());
  CHECK(c.metadata == std::map<std::string, std::string>{{"k", "\"\\\b\f\r\tA"}});

  // A failed load leaves the checkpoint it was given as it was.
  writeBytes(path, file("{}", "x"));
  CHECK_FALSE(loadSafetensors(path, c, error));
  CHECK(c.tensors.size() == 3);
}

TEST_CASE("Checkpoint: every prefix and many corruptions of a file are refused or read, never "
          "a crash",
          "[checkpoint]") {
  TempDir dir;
  std::string good = dir.path + "/good.safetensors";
  const std::vector<float> w = {1, 2, 3, 4, 5, 6};
  const std::vector<int64_t> s = {9};
  REQUIRE(save(good, {{"w", DType::F32, {2, 3}, w.data()}, {"s", DType::I64, {}, s.data()}},
               {{"step", "9"}, {"note", "\xc3\xa9\\u"}}));
  const std::string bytes = readBytes(good);
  std::string path = dir.path + "/damaged.safetensors";
  // Cut short, from the longest prefix down to nothing.
  writeBytes(path, bytes);
  for (size_t len = bytes.size(); len-- > 0;) {
    REQUIRE(::truncate(path.c_str(), static_cast<off_t>(len)) == 0);
    std::string error = loadError(path);
    INFO("first " << len << " bytes: " << error);
    CHECK(error.rfind(path + ": ", 0) == 0);
  }
  // One byte changed, everywhere, to bytes that mean something in JSON or
  // UTF-8 (written in place: creating thousands of files is slow).
  writeBytes(path, bytes);
  int fd = ::open(path.c_str(), O_WRONLY);
  REQUIRE(fd >= 0);
  size_t loaded = 0, refused = 0;
  for (size_t pos = 0; pos < bytes.size(); ++pos) {
    for (unsigned char v : {0x00, 0x01, 0x20, 0x22, 0x2C, 0x2D, 0x30, 0x39, 0x3A, 0x5B, 0x5C, 0x5D,
                            0x65, 0x7B, 0x7D, 0x80, 0xC3, 0xFF}) {
      REQUIRE(::pwrite(fd, &v, 1, static_cast<off_t>(pos)) == 1);
      Checkpoint c;
      std::string error;
      if (loadSafetensors(path, c, error)) {
        ++loaded;
        size_t total = 0;
        for (const CheckpointTensor &t : c.tensors)
          total += t.data.size();
        CHECK(total <= bytes.size());
      } else {
        ++refused;
        INFO("byte " << pos << " set to " << int(v) << ": " << error);
        CHECK(error.rfind(path + ": ", 0) == 0);
      }
    }
    REQUIRE(::pwrite(fd, &bytes[pos], 1, static_cast<off_t>(pos)) == 1);
  }
  ::close(fd);
  CHECK(loaded > 0);  // the tensors' data can be anything
  CHECK(refused > 0); // the header cannot
}

TEST_CASE("Checkpoint: checked against the model's tensors, the first mismatch is reported",
          "[checkpoint]") {
  TempDir dir;
  std::string path = dir.path + "/model.safetensors";
  std::vector<float> fc1(64 * 784, 0.5f), bias(64, 0.0f);
  const std::vector<int64_t> step = {3};
  REQUIRE(save(path, {{"fc1.weight", DType::F32, {64, 784}, fc1.data()},
                      {"fc1.bias", DType::F32, {64}, bias.data()},
                      {"step", DType::I64, {}, step.data()}}));
  Checkpoint c;
  std::string error;
  REQUIRE(loadSafetensors(path, c, error));
  std::vector<TensorSpec> model = {{"fc1.weight", DType::F32, {64, 784}},
                                   {"fc1.bias", DType::F32, {64}},
                                   {"step", DType::I64, {}}};
  CHECK(checkpointMatches(c, model, error));

  auto mismatch = [&](const std::vector<TensorSpec> &m) {
    std::string e;
    CHECK_FALSE(checkpointMatches(c, m, e));
    return e;
  };
  std::vector<TensorSpec> m = model;
  m[0].shape = {32, 784};
  CHECK(mismatch(m) == path + ": tensor 'fc1.weight' has shape [64, 784] but the model's is "
                              "[32, 784]");
  m = model;
  m[2].dtype = DType::F32;
  CHECK(mismatch(m) == path + ": tensor 'step' has dtype I64 but the model's is F32");
  m = model;
  m[2].shape = {1};
  CHECK(mismatch(m) == path + ": tensor 'step' has shape [] but the model's is [1]");
  m = model;
  m.push_back({"fc3.bias", DType::F32, {10}});
  CHECK(mismatch(m) == path + ": the model has 'fc3.bias' but the checkpoint does not");
  m = model;
  m.erase(m.begin() + 1);
  CHECK(mismatch(m) == path + ": the checkpoint has 'fc1.bias', which the model does not");
  // The first mismatch in the model's order, then the checkpoint's.
  m = {{"fc1.bias", DType::F32, {65}}, {"fc2.weight", DType::F32, {1}}};
  CHECK(mismatch(m) == path + ": tensor 'fc1.bias' has shape [64] but the model's is [65]");
  m = {{"fc2.weight", DType::F32, {1}}, {"fc1.bias", DType::F32, {65}}};
  CHECK(mismatch(m) == path + ": the model has 'fc2.weight' but the checkpoint does not");
  m = {{"step", DType::I64, {}}};
  CHECK(mismatch(m) == path + ": the checkpoint has 'fc1.bias', which the model does not");
}

TEST_CASE("Checkpoint: an independent reader and writer (Python's json and PyTorch) agree",
          "[checkpoint][torch]") {
  // tests/torch/checkpoint.py reads the file written here with json and
  // torch.frombuffer, checks its layout and values, and writes one of its
  // own (tensors in name order, unaligned, \u escapes, metadata last),
  // which is read here. Exit status 77: PyTorch is not installed.
  if (::access("/usr/bin/python3", X_OK) != 0) {
    WARN("skipped: /usr/bin/python3 is not installed");
    return;
  }
  TempDir dir;
  std::string ours = dir.path + "/nnc.safetensors", theirs = dir.path + "/python.safetensors";
  REQUIRE(save(ours, modelTensors(), kMetadata));
  std::string command = std::string("/usr/bin/python3 '") + NNC_SOURCE_DIR +
                        "/tests/torch/checkpoint.py' '" + ours + "' '" + theirs + "'";
  int status = std::system(command.c_str());
  REQUIRE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77) {
    WARN("skipped: PyTorch is not installed for /usr/bin/python3");
    return;
  }
  REQUIRE(WEXITSTATUS(status) == 0);

  Checkpoint c;
  std::string error;
  REQUIRE(loadSafetensors(theirs, c, error));
  std::vector<std::string> names;
  for (const CheckpointTensor &t : c.tensors)
    names.push_back(t.name);
  REQUIRE(names == std::vector<std::string>{"i", "ids", "u", "w", "x", "z"});
  CHECK(c.tensors[0].dtype == DType::I64);
  CHECK(valuesOf<int64_t>(c.tensors[0]) == std::vector<int64_t>{-5, int64_t(1) << 40});
  CHECK(c.tensors[1].dtype == DType::I32);
  CHECK(valuesOf<int32_t>(c.tensors[1]) == std::vector<int32_t>{7, -8, 2147483647});
  CHECK(c.tensors[2].dtype == DType::U8);
  CHECK(c.tensors[2].data == std::vector<uint8_t>{0, 1, 127, 128, 255});
  CHECK(c.tensors[3].dtype == DType::F64);
  CHECK(c.tensors[3].shape == std::vector<int64_t>{2, 2});
  CHECK(valuesOf<double>(c.tensors[3]) == std::vector<double>{1.5, -2.5, 1e-300, 3.25});
  CHECK(c.tensors[4].dtype == DType::F32);
  CHECK(c.tensors[4].shape.empty());
  CHECK(valuesOf<float>(c.tensors[4]) == std::vector<float>{0.75f});
  CHECK(c.tensors[5].shape == std::vector<int64_t>{0});
  CHECK(c.tensors[5].data.empty());
  CHECK(c.metadata ==
        std::map<std::string, std::string>{{"emoji", "\xf0\x9f\x98\x80 \xc3\xa9 \xe2\x9c\x93"},
                                           {"quote", "\"q\"\\ \n"},
                                           {"step", "7"}});
}

TEST_CASE("Checkpoint: the optimizer state's file is named after the weights file") {
  using nnc_rt::optimizerStatePath;
  CHECK(optimizerStatePath("w.safetensors") == "w.optimizer.safetensors");
  CHECK(optimizerStatePath("run/w.st") == "run/w.optimizer.st");
  CHECK(optimizerStatePath("run.d/w") == "run.d/w.optimizer");
  CHECK(optimizerStatePath("ckpt") == "ckpt.optimizer");
  CHECK(optimizerStatePath("dir/.hidden") == "dir/.hidden.optimizer");
  CHECK(optimizerStatePath("a.b.c") == "a.b.optimizer.c");
}
