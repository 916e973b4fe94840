// Text.cpp — small text helpers.
#include "support/Text.h"

#include "Training.h"

namespace nnc {

std::string withThousands(int64_t n) { return nnc_rt::withThousands(n); }

std::string joinNames(const std::vector<std::string> &names, const std::string &conjunction) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0)
      out += i + 1 == names.size() ? " " + conjunction + " " : ", ";
    out += names[i];
  }
  return out;
}

} // namespace nnc
