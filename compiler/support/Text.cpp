// Text.cpp — small text helpers.
#include "support/Text.h"

namespace nnc {

std::string withThousands(int64_t n) {
  std::string digits = std::to_string(n);
  bool negative = !digits.empty() && digits[0] == '-';
  if (negative)
    digits.erase(0, 1);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0)
      out += ',';
    out += digits[i];
  }
  return negative ? "-" + out : out;
}

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
