// Checkpoint.h — reading and writing safetensors files
// (https://github.com/huggingface/safetensors), the checkpoint format nnc
// shares with PyTorch.
//
// A file is: 8 bytes, a little-endian unsigned header size N; N bytes of
// UTF-8 JSON, an object mapping each tensor's name to
// {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]} plus an
// optional "__metadata__" object of strings, padded with trailing spaces;
// then the tensors' bytes, little-endian and row-major, where data_offsets
// count from the first byte after the header.
//
// The writer lays a file out as the reference writer does: tensors sorted
// by dtype (I64, F64, F32, I32, U8: the reference's alignment order) and
// then by name, "__metadata__" first with its keys sorted, compact JSON
// escaped as serde_json escapes it, the header padded with spaces to a
// multiple of 8 bytes. It writes atomically: a temporary file beside the
// target, flushed and fsync'ed, then renamed over it.
//
// The reader trusts nothing: it checks the file's size against the header
// size before allocating, parses the header with a strict JSON parser
// (UTF-8, escapes, surrogate pairs, nesting at most 64 deep, no duplicate
// keys), requires exactly dtype, shape and data_offsets for each tensor,
// checks every size for overflow and that the tensors cover the data
// exactly, without holes or overlaps, before it reads a byte of data. Every
// failure is a sentence "FILE: what is wrong", naming the tensor when one
// is at fault.
//
// Tensor data in memory (what the writer takes, what the reader returns) is
// in the host's byte order; the file is little-endian.
//
// C++17, the standard library and POSIX (open, fsync, rename): --emit-cpp
// copies this file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace nnc_rt {

/// The element types nnc reads and writes (safetensors' names). Any other
/// dtype in a file (BF16, F16, BOOL, U64, …) is refused by name.
enum class DType : uint8_t { F32, F64, I32, I64, U8 };

/// "F32", "F64", "I32", "I64", "U8".
const char *dtypeName(DType dtype);
/// Bytes per element: 4, 8, 4, 8, 1.
size_t dtypeSize(DType dtype);
/// The dtype named `name` ("F32", …); false if nnc does not read it.
bool dtypeFromName(const std::string &name, DType &dtype);

/// "[64, 784]"; "[]" for a scalar.
std::string formatShape(const std::vector<int64_t> &shape);

/// A tensor to write: `data` points to product(shape) elements of `dtype`
/// in host byte order (it may be null when that product is 0).
struct TensorRef {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void *data = nullptr;
};

/// A tensor read from a file.
struct CheckpointTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data; ///< product(shape) × dtypeSize(dtype) bytes, host byte order

  /// The number of elements: the product of the shape (1 for a scalar).
  int64_t elementCount() const;
};

/// The contents of a safetensors file.
struct Checkpoint {
  std::string path;                            ///< the file it was read from
  std::vector<CheckpointTensor> tensors;       ///< in the order the header lists them
  std::map<std::string, std::string> metadata; ///< "__metadata__"; empty if absent

  /// The tensor named `name`, or null.
  const CheckpointTensor *find(const std::string &name) const;
};

/// Writes `tensors` and `metadata` to `path` as a safetensors file,
/// atomically: `path` is either replaced by the complete new file or left
/// as it was. Names must be distinct, not "__metadata__", and valid UTF-8,
/// as must metadata. Returns false and sets `error` ("PATH: what went
/// wrong") on any failure, leaving no temporary file behind.
bool saveSafetensors(const std::string &path, const std::vector<TensorRef> &tensors,
                     const std::map<std::string, std::string> &metadata, std::string &error);

/// One file for saveSafetensorsFiles.
struct SafetensorsFile {
  std::string path;
  std::vector<TensorRef> tensors;
  std::map<std::string, std::string> metadata;
};

/// Writes several files as saveSafetensors does, all or nothing as far as
/// failures go: each is written to a temporary beside it and flushed, and
/// only when every one is complete are they renamed over their targets, in
/// order. A write that fails (a full disk, a read-only directory) leaves
/// every target as it was. Returns false and sets `error` ("PATH: what went
/// wrong: strerror") on any failure, leaving no temporary file behind.
bool saveSafetensorsFiles(const std::vector<SafetensorsFile> &files, std::string &error);

/// The largest header the reader accepts (the reference reader's limit).
constexpr uint64_t kMaxSafetensorsHeader = 100000000;
/// The most dimensions a tensor may have, and the deepest JSON nesting.
constexpr size_t kMaxSafetensorsRank = 64;
constexpr int kMaxSafetensorsDepth = 64;

/// Reads the safetensors file `path` into `out` (replaced only on
/// success). Returns false and sets `error` ("PATH: what is wrong") if the
/// file cannot be read or is not a valid safetensors file of dtypes nnc
/// reads.
bool loadSafetensors(const std::string &path, Checkpoint &out, std::string &error);

/// A tensor the model expects to find in a checkpoint.
struct TensorSpec {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
};

/// Checks that `checkpoint` holds exactly the tensors `model` lists, with
/// their dtypes and shapes. Returns false and sets `error` to the first
/// mismatch, in the model's order and then the checkpoint's:
///   "PATH: the model has 'fc3.bias' but the checkpoint does not"
///   "PATH: tensor 'step' has dtype F32 but the model's is I64"
///   "PATH: tensor 'fc1.weight' has shape [64, 784] but the model's is [32, 784]"
///   "PATH: the checkpoint has 'extra.weight', which the model does not"
/// where PATH is checkpoint.path.
bool checkpointMatches(const Checkpoint &checkpoint, const std::vector<TensorSpec> &model,
                       std::string &error);

} // namespace nnc_rt
