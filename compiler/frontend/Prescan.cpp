// Prescan.cpp — the checks that run before ANTLR: UTF-8, nesting depth and
// token count. No ANTLR here: it scans the bytes.
#include "frontend/Prescan.h"

#include "frontend/Parse.h"
#include "support/Text.h"

#include <cctype>
#include <cstdio>

namespace nnc {

/// Finds the first byte that is not valid UTF-8; reports it and returns false.
bool checkUtf8(const SourceFile &src, uint32_t file, Diag &diag) {
  const std::string &t = src.text();
  uint32_t line = 1, column = 1;
  for (size_t i = 0; i < t.size();) {
    unsigned char c = static_cast<unsigned char>(t[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = n != 0 && i + n <= t.size();
    for (size_t k = 1; ok && k < n; ++k)
      ok = (static_cast<unsigned char>(t[i + k]) & 0xC0) == 0x80;
    if (ok && n == 2)
      ok = c >= 0xC2; // overlong
    if (ok && n == 3) {
      unsigned char c1 = static_cast<unsigned char>(t[i + 1]);
      ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0); // overlong, surrogate
    }
    if (ok && n == 4) {
      unsigned char c1 = static_cast<unsigned char>(t[i + 1]);
      ok = c <= 0xF4 && !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
    }
    if (!ok) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", c);
      diag.error({file, line, column, 1},
                 std::string("invalid UTF-8 byte ") + hex + "; a .nn file must be UTF-8 text",
                 "is this a binary file? re-save it as UTF-8 if it was written in another encoding");
      return false;
    }
    if (c == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
    i += n;
  }
  return true;
}

/// Rejects, before ANTLR sees them, nesting deeper than kMaxNesting (which
/// would recurse too deeply) and files of more than kMaxTokens tokens (which
/// would take ANTLR more than a second or so). Strings and comments are
/// skipped, exactly as the lexer skips them (a line comment ends at '\n' or
/// '\r'). Besides brackets, a run of unary minus signs and a chain of '@'
/// in one statement count as nesting: each is a level of the syntax tree.
/// Tokens are counted from above: a run of letters, digits and '_' is one,
/// a '.' starts a new one (".5.5" is two numbers), a string is one, and any
/// other character is one.
bool prescan(const SourceFile &src, uint32_t file, Diag &diag) {
  const std::string &t = src.text();
  uint32_t line = 1, column = 1;
  int depth = 0, minusRun = 0, matmuls = 0;
  size_t tokens = 0;
  bool inWord = false;
  auto countToken = [&]() {
    if (++tokens <= kMaxTokens)
      return true;
    diag.error({file, line, column, 1},
               "the file has more than " + withThousands(kMaxTokens) + " tokens",
               "nnc reads models written by people; a file this large is probably not one");
    return false;
  };
  auto advance = [&](size_t &i) {
    unsigned char c = static_cast<unsigned char>(t[i]);
    if (c == '\n') {
      ++line;
      column = 1;
    } else if ((c & 0xC0) != 0x80) {
      ++column;
    }
    ++i;
  };
  for (size_t i = 0; i < t.size();) {
    char c = t[i];
    bool wordChar = std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    if (!wordChar)
      inWord = false;
    if (c == '"') { // string: to the closing quote or the end of the line
      if (!countToken())
        return false;
      advance(i);
      while (i < t.size() && t[i] != '"' && t[i] != '\n') {
        if (t[i] == '\\' && i + 1 < t.size() && t[i + 1] != '\n')
          advance(i);
        advance(i);
      }
      if (i < t.size() && t[i] == '"')
        advance(i);
      minusRun = 0;
      continue;
    }
    if (c == '#' || (c == '/' && i + 1 < t.size() && t[i + 1] == '/')) {
      while (i < t.size() && t[i] != '\n' && t[i] != '\r')
        advance(i);
      continue;
    }
    if (c == '/' && i + 1 < t.size() && t[i + 1] == '*') {
      advance(i);
      advance(i);
      while (i < t.size() && !(t[i] == '*' && i + 1 < t.size() && t[i + 1] == '/'))
        advance(i);
      if (i < t.size()) {
        advance(i);
        advance(i);
      }
      continue;
    }
    bool space = c == ' ' || c == '\t' || c == '\r' || c == '\n';
    bool arrowEnd = c == '>' && i > 0 && t[i - 1] == '-';
    if (!space && !(wordChar && inWord) && !arrowEnd && !countToken())
      return false;
    inWord = wordChar;
    if (c == '(' || c == '[' || c == '{')
      ++depth;
    else if (c == ')' || c == ']' || c == '}')
      depth = depth > 0 ? depth - 1 : 0;
    if (c == '-' && !(i + 1 < t.size() && t[i + 1] == '>'))
      ++minusRun;
    else if (!space)
      minusRun = 0;
    if (c == '@')
      ++matmuls;
    else if (c == '=' || c == ';' || c == '{' || c == '}')
      matmuls = 0; // a new statement
    if (depth + minusRun + matmuls > kMaxNesting) {
      diag.error({file, line, column, 1},
                 "nesting deeper than " + std::to_string(kMaxNesting) + " levels",
                 "name intermediate values (`h = …`) instead of nesting expressions");
      return false;
    }
    advance(i);
  }
  return true;
}

} // namespace nnc
