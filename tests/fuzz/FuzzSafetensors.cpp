// FuzzSafetensors.cpp — libFuzzer target: the safetensors reader
// (runtime/Checkpoint.cpp) on the input's bytes, and a checkpoint it reads
// matched against a fixed model's tensors. Every input must be read or
// refused with an error naming the file; nothing else.
#include "Checkpoint.h"
#include "FuzzFile.h"

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static nnc_fuzz::FuzzFile file("weights.safetensors");
  const std::string &path = file.write(data, size);
  nnc_rt::Checkpoint checkpoint;
  std::string error;
  if (!nnc_rt::loadSafetensors(path, checkpoint, error)) {
    if (error.rfind(path, 0) != 0) {
      std::cerr << "the error does not start with the file's name: " << error << "\n";
      std::abort();
    }
    return 0;
  }
  for (const nnc_rt::CheckpointTensor &t : checkpoint.tensors)
    if (t.data.size() != static_cast<size_t>(t.elementCount()) * nnc_rt::dtypeSize(t.dtype)) {
      std::cerr << "tensor '" << t.name << "' has " << t.data.size() << " bytes for "
                << t.elementCount() << " elements\n";
      std::abort();
    }
  static const std::vector<nnc_rt::TensorSpec> model = {
      {"fc1.weight", nnc_rt::DType::F32, {4, 3}},
      {"fc1.bias", nnc_rt::DType::F32, {4}},
      {"step", nnc_rt::DType::I64, {}}};
  nnc_rt::checkpointMatches(checkpoint, model, error);
  return 0;
}
