// idx_check.cpp — test tool: loads an MNIST-format directory with the
// runtime's reader and prints each split's count, image size and label
// histogram, or the reader's error (exit 1).
//
//   idx_check DIR
#include "Idx.h"

#include <cstdio>

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: idx_check DIR\n");
    return 2;
  }
  for (bool train : {true, false}) {
    nnc_rt::Dataset d;
    std::string error;
    if (!nnc_rt::loadMnist(argv[1], train, d, error)) {
      std::fprintf(stderr, "%s\n", error.c_str());
      return 1;
    }
    int histogram[256] = {};
    for (uint8_t l : d.labels)
      ++histogram[l];
    std::printf("%s: %lld images of %lldx%lld, labels", train ? "train" : "test",
                static_cast<long long>(d.count), static_cast<long long>(d.rows),
                static_cast<long long>(d.cols));
    for (int l = 0; l < 256; ++l)
      if (histogram[l] > 0)
        std::printf(" %d:%d", l, histogram[l]);
    std::printf("\n");
  }
  return 0;
}
