// Checkpoint.cpp — safetensors files (see Checkpoint.h).
#include "Checkpoint.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <limits>
#include <memory>
#include <numeric>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

namespace nnc_rt {
namespace {

constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();
constexpr uint64_t kI64Max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

bool hostIsLittleEndian() {
  const uint16_t one = 1;
  uint8_t first;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

/// Reverses the bytes of each `elem`-byte element of p[0, bytes).
void swapElements(uint8_t *p, size_t bytes, size_t elem) {
  if (elem > 1)
    for (size_t i = 0; i + elem <= bytes; i += elem)
      std::reverse(p + i, p + i + elem);
}

/// The safetensors reference writer orders tensors by its Dtype enum,
/// descending (BOOL < U8 < … < I32 < U32 < F32 < F64 < I64 < U64); these
/// are the positions of nnc's dtypes in that enum.
int referenceRank(DType dtype) {
  switch (dtype) {
  case DType::U8:
    return 1;
  case DType::I32:
    return 9;
  case DType::F32:
    return 11;
  case DType::F64:
    return 12;
  case DType::I64:
    return 13;
  }
  return 0;
}

/// product(shape) × elemSize, folded left to right with overflow checks as
/// the reference reader does (so a file this writes, it reads). False on
/// overflow or a negative dimension.
bool byteSize(const std::vector<int64_t> &shape, size_t elemSize, uint64_t &bytes) {
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0)
      return false;
    uint64_t u = static_cast<uint64_t>(d);
    if (u != 0 && n > kU64Max / u)
      return false;
    n *= u;
  }
  if (n > kU64Max / elemSize)
    return false;
  bytes = n * elemSize;
  return true;
}

// ---- UTF-8 and JSON text ----

/// The offset of the first byte of `s` that does not begin a well-formed
/// UTF-8 sequence (RFC 3629: no overlong forms, no surrogates, nothing above
/// U+10FFFF), or npos if there is none.
size_t invalidUtf8(const std::string &s) {
  const unsigned char *p = reinterpret_cast<const unsigned char *>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; // the range of the second byte
    if (c >= 0xC2 && c <= 0xDF)
      len = 2;
    else if (c == 0xE0)
      len = 3, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
      len = 3;
    else if (c == 0xED)
      len = 3, hi = 0x9F;
    else if (c == 0xF0)
      len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3)
      len = 4;
    else if (c == 0xF4)
      len = 4, hi = 0x8F;
    else
      return i;
    if (n - i < len || p[i + 1] < lo || p[i + 1] > hi)
      return i;
    for (size_t k = 2; k < len; ++k)
      if ((p[i + k] & 0xC0) != 0x80)
        return i;
    i += len;
  }
  return std::string::npos;
}

void appendUtf8(std::string &out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

/// `s` as a JSON string, escaped exactly as serde_json (the reference
/// writer's JSON library) escapes: \" \\ \b \f \n \r \t, other control
/// characters as \u00xx, everything else (including non-ASCII UTF-8) as is.
void appendJsonString(std::string &out, const std::string &s) {
  static const char hex[] = "0123456789abcdef";
  out += '"';
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\b':
      out += "\\b";
      break;
    case '\f':
      out += "\\f";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    default:
      if (c < 0x20) {
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 15];
      } else {
        out += ch;
      }
    }
  }
  out += '"';
}

/// A name or value for a message: in single quotes, control characters
/// escaped, cut to about 80 bytes (at a character boundary).
std::string quoted(const std::string &s) {
  static const char hex[] = "0123456789ABCDEF";
  size_t n = s.size();
  bool cut = n > 80;
  if (cut) {
    n = 80;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80)
      --n;
  }
  std::string out = "'";
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else if (c < 0x20 || c == 0x7F) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + (cut ? "...'" : "'");
}

/// "1 byte", "24 bytes".
std::string bytesText(uint64_t n) {
  return std::to_string(n) + (n == 1 ? " byte" : " bytes");
}

std::string offsetsText(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
}

// ---- a strict JSON reader (RFC 8259) over the header ----

enum class Kind { Object, Array, String, Number, Boolean, Null, End, Invalid };

const char *kindName(Kind kind) {
  switch (kind) {
  case Kind::Object:
    return "an object";
  case Kind::Array:
    return "an array";
  case Kind::String:
    return "a string";
  case Kind::Number:
    return "a number";
  case Kind::Boolean:
    return "a boolean";
  case Kind::Null:
    return "null";
  case Kind::End:
    return "nothing";
  case Kind::Invalid:
    return "not JSON";
  }
  return "?";
}

struct Number {
  bool integer = false;  ///< no fraction, no exponent
  bool negative = false; ///< a leading '-'
  bool overflow = false; ///< the magnitude does not fit in 64 bits
  uint64_t magnitude = 0;
  std::string text; ///< as written, cut to 40 characters
};

/// Reads one JSON value with the pull-style calls below. Only valid JSON
/// gets through: no trailing commas, comments, single quotes, leading
/// zeros, unescaped control characters, invalid escapes or lone surrogates.
/// The input must already be valid UTF-8. Nesting is limited to
/// kMaxSafetensorsDepth objects and arrays.
class JsonReader {
public:
  JsonReader(const char *data, size_t size) : begin_(data), p_(data), end_(data + size) {}

  /// The first error, a complete sentence.
  const std::string &error() const { return error_; }

  /// The kind of the next value, after skipping whitespace.
  Kind peek() {
    ws();
    if (p_ == end_)
      return Kind::End;
    switch (*p_) {
    case '{':
      return Kind::Object;
    case '[':
      return Kind::Array;
    case '"':
      return Kind::String;
    case 't':
    case 'f':
      return Kind::Boolean;
    case 'n':
      return Kind::Null;
    default:
      return *p_ == '-' || isDigit(*p_) ? Kind::Number : Kind::Invalid;
    }
  }

  /// One complete document: a value and then only whitespace.
  bool document() {
    if (!skip(1))
      return false;
    ws();
    return p_ == end_ || syntax("expected the end of the header after its top-level value");
  }

  /// Reads and discards any value nested `depth` deep (the top level is 1).
  bool skip(int depth) {
    switch (peek()) {
    case Kind::Object:
      return object(depth, [&](const std::string &) { return skip(depth + 1); });
    case Kind::Array:
      return array(depth, [&](size_t) { return skip(depth + 1); });
    case Kind::String:
      return string(nullptr);
    case Kind::Number:
      return number(nullptr);
    case Kind::Boolean:
    case Kind::Null:
      return literal();
    default:
      return syntax("expected a value");
    }
  }

  /// An object `depth` deep; `member(key)` must read the member's value.
  template <class F> bool object(int depth, F &&member) {
    if (depth > kMaxSafetensorsDepth)
      return tooDeep();
    ws();
    if (p_ == end_ || *p_ != '{')
      return syntax("expected '{'");
    ++p_;
    ws();
    if (p_ != end_ && *p_ == '}') {
      ++p_;
      return true;
    }
    std::string key;
    for (;;) {
      ws();
      if (p_ == end_ || *p_ != '"')
        return syntax("expected a string (an object key)");
      key.clear();
      if (!string(&key))
        return false;
      ws();
      if (p_ == end_ || *p_ != ':')
        return syntax("expected ':' after an object key");
      ++p_;
      if (!member(key))
        return false;
      ws();
      if (p_ != end_ && *p_ == ',') {
        ++p_;
        continue;
      }
      if (p_ != end_ && *p_ == '}') {
        ++p_;
        return true;
      }
      return syntax("expected ',' or '}' after an object member");
    }
  }

  /// An array `depth` deep; `element(index)` must read the element.
  template <class F> bool array(int depth, F &&element) {
    if (depth > kMaxSafetensorsDepth)
      return tooDeep();
    ws();
    if (p_ == end_ || *p_ != '[')
      return syntax("expected '['");
    ++p_;
    ws();
    if (p_ != end_ && *p_ == ']') {
      ++p_;
      return true;
    }
    for (size_t index = 0;; ++index) {
      if (!element(index))
        return false;
      ws();
      if (p_ != end_ && *p_ == ',') {
        ++p_;
        continue;
      }
      if (p_ != end_ && *p_ == ']') {
        ++p_;
        return true;
      }
      return syntax("expected ',' or ']' after an array element");
    }
  }

  /// A string, decoded into *out unless out is null.
  bool string(std::string *out) {
    ws();
    if (p_ == end_ || *p_ != '"')
      return syntax("expected '\"'");
    ++p_;
    for (;;) {
      if (p_ == end_)
        return syntax("a string is not closed");
      unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        ++p_;
        return true;
      }
      if (c < 0x20)
        return syntax("a control character inside a string must be escaped");
      ++p_;
      if (c != '\\') {
        if (out)
          *out += static_cast<char>(c);
        continue;
      }
      if (p_ == end_)
        return syntax("a string is not closed");
      char e = *p_;
      const char *simple = "\"\\/bfnrt", *decoded = "\"\\/\b\f\n\r\t";
      if (const char *at = e != '\0' ? std::strchr(simple, e) : nullptr) {
        ++p_;
        if (out)
          *out += decoded[at - simple];
        continue;
      }
      if (e != 'u')
        return syntax("an invalid escape in a string");
      ++p_;
      uint32_t cp;
      if (!hex4(cp))
        return false;
      if (cp >= 0xDC00 && cp <= 0xDFFF)
        return syntax("a \\u escape is a lone low surrogate");
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u')
          return syntax("a \\u escape is a high surrogate not followed by a low one");
        p_ += 2;
        uint32_t low;
        if (!hex4(low))
          return false;
        if (low < 0xDC00 || low > 0xDFFF)
          return syntax("a \\u escape is a high surrogate not followed by a low one");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
      }
      if (out)
        appendUtf8(*out, cp);
    }
  }

  /// A number, described in *out unless out is null.
  bool number(Number *out) {
    ws();
    const char *start = p_;
    Number n;
    n.integer = true;
    if (p_ != end_ && *p_ == '-') {
      n.negative = true;
      ++p_;
    }
    if (p_ == end_ || !isDigit(*p_))
      return syntax("expected a digit");
    if (*p_ == '0') {
      ++p_;
      if (p_ != end_ && isDigit(*p_))
        return syntax("a number has a leading zero");
    } else {
      for (; p_ != end_ && isDigit(*p_); ++p_) {
        uint64_t d = static_cast<uint64_t>(*p_ - '0');
        if (n.overflow || n.magnitude > (kU64Max - d) / 10)
          n.overflow = true;
        else
          n.magnitude = n.magnitude * 10 + d;
      }
    }
    if (p_ != end_ && *p_ == '.') {
      n.integer = false;
      ++p_;
      if (p_ == end_ || !isDigit(*p_))
        return syntax("expected a digit after a decimal point");
      while (p_ != end_ && isDigit(*p_))
        ++p_;
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      n.integer = false;
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-'))
        ++p_;
      if (p_ == end_ || !isDigit(*p_))
        return syntax("expected a digit in an exponent");
      while (p_ != end_ && isDigit(*p_))
        ++p_;
    }
    if (out) {
      size_t len = static_cast<size_t>(p_ - start);
      n.text.assign(start, std::min<size_t>(len, 40));
      if (len > 40)
        n.text += "...";
      *out = std::move(n);
    }
    return true;
  }

private:
  static bool isDigit(char c) { return c >= '0' && c <= '9'; }

  void ws() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r'))
      ++p_;
  }

  bool literal() {
    for (const char *word : {"true", "false", "null"}) {
      size_t len = std::strlen(word);
      if (static_cast<size_t>(end_ - p_) >= len && std::memcmp(p_, word, len) == 0) {
        p_ += len;
        return true;
      }
    }
    return syntax("expected a value");
  }

  bool hex4(uint32_t &value) {
    value = 0;
    for (int i = 0; i < 4; ++i, ++p_) {
      if (p_ == end_)
        return syntax("a \\u escape needs four hexadecimal digits");
      char c = *p_;
      uint32_t d;
      if (c >= '0' && c <= '9')
        d = static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f')
        d = static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        d = static_cast<uint32_t>(c - 'A' + 10);
      else
        return syntax("a \\u escape needs four hexadecimal digits");
      value = value * 16 + d;
    }
    return true;
  }

  std::string where() const { return "(byte " + std::to_string(p_ - begin_) + " of the header)"; }

  bool syntax(const std::string &what) {
    std::string found;
    if (p_ == end_) {
      found = "the end of the header";
    } else {
      unsigned char c = static_cast<unsigned char>(*p_);
      char buf[16];
      if (c > 0x20 && c < 0x7F)
        std::snprintf(buf, sizeof buf, "'%c'", c);
      else
        std::snprintf(buf, sizeof buf, "byte 0x%02X", c);
      found = buf;
    }
    error_ = "the header is not valid JSON: " + what + ", found " + found + " " + where();
    return false;
  }

  bool tooDeep() {
    error_ = "the header nests objects and arrays more than " +
             std::to_string(kMaxSafetensorsDepth) + " deep " + where();
    return false;
  }

  const char *begin_, *p_, *end_;
  std::string error_;
};

// ---- the header's meaning ----

struct Entry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0, bytes = 0;
};

/// Parses `header` (valid UTF-8) into tensor entries and metadata. On
/// failure sets `why` (a sentence without the file name).
bool parseHeader(const std::string &header, std::vector<Entry> &entries,
                 std::map<std::string, std::string> &metadata, std::string &why) {
  if (header.empty()) {
    why = "the header is empty (its size field is 0)";
    return false;
  }
  // First: is it JSON at all? Then: does it say what a header must?
  JsonReader check(header.data(), header.size());
  Kind root = check.peek();
  if (!check.document()) {
    why = check.error();
    return false;
  }
  if (root != Kind::Object) {
    why = std::string("the header is JSON but not an object: it is ") + kindName(root);
    return false;
  }
  if (header[0] != '{') {
    why = "the header begins with whitespace; the format requires '{' as its first byte";
    return false;
  }

  JsonReader json(header.data(), header.size());
  auto bad = [&](const std::string &what) {
    why = what;
    return false;
  };
  std::set<std::string> names;
  bool sawMetadata = false;
  bool ok = json.object(1, [&](const std::string &key) -> bool {
    if (key == "__metadata__") {
      if (sawMetadata)
        return bad("the header has \"__metadata__\" twice");
      sawMetadata = true;
      Kind kind = json.peek();
      if (kind != Kind::Object)
        return bad(std::string("\"__metadata__\" is ") + kindName(kind) +
                   ", not an object of strings");
      return json.object(2, [&](const std::string &mkey) -> bool {
        Kind vkind = json.peek();
        if (vkind != Kind::String)
          return bad("metadata " + quoted(mkey) + " is " + kindName(vkind) + ", not a string");
        std::string value;
        if (!json.string(&value))
          return false;
        if (!metadata.emplace(mkey, std::move(value)).second)
          return bad("metadata " + quoted(mkey) + " appears twice");
        return true;
      });
    }
    std::string t = "tensor " + quoted(key);
    if (!names.insert(key).second)
      return bad(t + " appears twice in the header");
    Kind kind = json.peek();
    if (kind != Kind::Object)
      return bad(t + " is described by " + kindName(kind) + ", not an object");
    Entry e;
    e.name = key;
    bool hasDtype = false, hasShape = false, hasOffsets = false;
    // One element of shape or data_offsets: a non-negative integer.
    auto integer = [&](const char *what, uint64_t limit, uint64_t &value) -> bool {
      Kind k = json.peek();
      if (k != Kind::Number)
        return bad(t + " has " + kindName(k) + " in its " + what + ", not an integer");
      Number n;
      if (!json.number(&n))
        return false;
      if (!n.integer)
        return bad(t + " has " + n.text + " in its " + what + ", which is not an integer");
      if (n.negative && (n.overflow || n.magnitude != 0))
        return bad(t + " has a negative number " + n.text + " in its " + what);
      if (n.overflow || n.magnitude > limit)
        return bad(t + " has " + n.text + " in its " + what + ", which is too large");
      value = n.magnitude;
      return true;
    };
    bool fieldsOk = json.object(2, [&](const std::string &field) -> bool {
      if (field == "dtype") {
        if (hasDtype)
          return bad(t + " has \"dtype\" twice");
        hasDtype = true;
        Kind k = json.peek();
        if (k != Kind::String)
          return bad(t + " has a dtype that is " + kindName(k) + ", not a string");
        std::string name;
        if (!json.string(&name))
          return false;
        if (!dtypeFromName(name, e.dtype))
          return bad(t + " has dtype " + quoted(name) +
                     ", which nnc does not read (it reads F32, F64, I32, I64 and U8)");
        return true;
      }
      if (field == "shape") {
        if (hasShape)
          return bad(t + " has \"shape\" twice");
        hasShape = true;
        Kind k = json.peek();
        if (k != Kind::Array)
          return bad(t + " has a shape that is " + kindName(k) + ", not an array");
        return json.array(3, [&](size_t index) -> bool {
          if (index >= kMaxSafetensorsRank)
            return bad(t + " has more than " + std::to_string(kMaxSafetensorsRank) + " dimensions");
          uint64_t d;
          if (!integer("shape", kI64Max, d))
            return false;
          e.shape.push_back(static_cast<int64_t>(d));
          return true;
        });
      }
      if (field == "data_offsets") {
        if (hasOffsets)
          return bad(t + " has \"data_offsets\" twice");
        hasOffsets = true;
        Kind k = json.peek();
        if (k != Kind::Array)
          return bad(t + " has data_offsets that are " + kindName(k) + ", not an array");
        uint64_t offsets[2] = {0, 0};
        size_t count = 0;
        if (!json.array(3, [&](size_t index) -> bool {
              if (index >= 2)
                return bad(t + " has more than two data_offsets; it needs [begin, end]");
              count = index + 1;
              return integer("data_offsets", kU64Max, offsets[index]);
            }))
          return false;
        if (count != 2)
          return bad(t + " has " + (count == 0 ? "no" : "only one") +
                     " data_offsets; it needs [begin, end]");
        e.begin = offsets[0];
        e.end = offsets[1];
        return true;
      }
      return bad(t + " has an unexpected key " + quoted(field) +
                 "; a tensor has exactly dtype, shape and data_offsets");
    });
    if (!fieldsOk)
      return false;
    if (!hasDtype)
      return bad(t + " has no dtype");
    if (!hasShape)
      return bad(t + " has no shape");
    if (!hasOffsets)
      return bad(t + " has no data_offsets");
    entries.push_back(std::move(e));
    return true;
  });
  if (!ok && why.empty())
    why = json.error();
  return ok;
}

/// Checks that the entries' sizes agree with their shapes and that together
/// they cover [0, dataBytes) exactly. Returns the entries' indices in file
/// order in `order`.
bool checkLayout(std::vector<Entry> &entries, uint64_t dataBytes, std::vector<size_t> &order,
                 std::string &why) {
  auto bad = [&](const std::string &what) {
    why = what;
    return false;
  };
  for (Entry &e : entries) {
    std::string t = "tensor " + quoted(e.name);
    if (!byteSize(e.shape, dtypeSize(e.dtype), e.bytes))
      return bad(t + " has shape " + formatShape(e.shape) + " of " + dtypeName(e.dtype) +
                 ", whose size in bytes does not fit in 64 bits");
    if (e.end < e.begin)
      return bad(t + " has data_offsets " + offsetsText(e.begin, e.end) +
                 ", which end before they begin");
    if (e.end - e.begin != e.bytes)
      return bad(t + " has shape " + formatShape(e.shape) + " of " + dtypeName(e.dtype) +
                 ", which takes " + bytesText(e.bytes) + ", but its data_offsets " +
                 offsetsText(e.begin, e.end) + " hold " + std::to_string(e.end - e.begin));
  }
  order.resize(entries.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return entries[a].begin != entries[b].begin ? entries[a].begin < entries[b].begin
                                                : entries[a].end < entries[b].end;
  });
  auto where = [&](const Entry &e) {
    return quoted(e.name) + " (data_offsets " + offsetsText(e.begin, e.end) + ")";
  };
  // Overlaps. In begin order, with none so far, the previous tensor ends last.
  for (size_t i = 1; i < order.size(); ++i) {
    const Entry &prev = entries[order[i - 1]], &e = entries[order[i]];
    if (e.begin < prev.end)
      return bad("tensors " + where(prev) + " and " + where(e) + " overlap");
  }
  // Without overlaps, the tensors cover [0, total) exactly unless there is
  // a gap; a file shorter than total is truncated if there is none.
  uint64_t covered = 0;
  const Entry *gapBefore = nullptr, *gapAfter = nullptr;
  uint64_t gapBegin = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    const Entry &e = entries[order[i]];
    if (e.begin != covered && gapBefore == nullptr) {
      gapBefore = &e;
      gapAfter = i > 0 ? &entries[order[i - 1]] : nullptr;
      gapBegin = covered;
    }
    covered = e.end;
  }
  if (covered > dataBytes) {
    if (gapBefore == nullptr)
      return bad("is truncated: its header describes " + bytesText(covered) +
                 " of tensor data but only " + std::to_string(dataBytes) + " follow the header");
    for (size_t i : order)
      if (entries[i].end > dataBytes)
        return bad("tensor " + where(entries[i]) + " lies beyond the end of the data, which is " +
                   bytesText(dataBytes) + " long");
  }
  if (gapBefore != nullptr)
    return bad("no tensor holds bytes " + offsetsText(gapBegin, gapBefore->begin) +
               " of the data (" +
               (gapAfter ? "between " + where(*gapAfter) + " and " : std::string("before ")) +
               where(*gapBefore) + ")");
  if (covered < dataBytes)
    return bad("no tensor holds the last " + bytesText(dataBytes - covered) +
               " of the file (the tensors' data ends at byte " + std::to_string(covered) +
               " of the " + std::to_string(dataBytes) + " after the header)");
  return true;
}

struct FileCloser {
  void operator()(FILE *f) const { std::fclose(f); }
};

/// Writes all of p[0, n) to fd; false with errno set on failure.
bool writeAll(int fd, const void *data, size_t n) {
  const char *p = static_cast<const char *>(data);
  while (n > 0) {
    size_t chunk = std::min<size_t>(n, size_t(1) << 30);
    ssize_t wrote = ::write(fd, p, chunk);
    if (wrote < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    if (wrote == 0) {
      errno = EIO;
      return false;
    }
    p += wrote;
    n -= static_cast<size_t>(wrote);
  }
  return true;
}

/// Writes a tensor's elements little-endian.
bool writeElements(int fd, const void *data, uint64_t bytes, size_t elemSize) {
  if (bytes == 0)
    return true;
  if (hostIsLittleEndian() || elemSize == 1)
    return writeAll(fd, data, static_cast<size_t>(bytes));
  const uint8_t *p = static_cast<const uint8_t *>(data);
  std::vector<uint8_t> buf(size_t(1) << 16);
  while (bytes > 0) {
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(bytes, buf.size()));
    std::memcpy(buf.data(), p, chunk);
    swapElements(buf.data(), chunk, elemSize);
    if (!writeAll(fd, buf.data(), chunk))
      return false;
    p += chunk;
    bytes -= chunk;
  }
  return true;
}

} // namespace

const char *dtypeName(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return "F32";
  case DType::F64:
    return "F64";
  case DType::I32:
    return "I32";
  case DType::I64:
    return "I64";
  case DType::U8:
    return "U8";
  }
  return "?";
}

size_t dtypeSize(DType dtype) {
  switch (dtype) {
  case DType::F32:
  case DType::I32:
    return 4;
  case DType::F64:
  case DType::I64:
    return 8;
  case DType::U8:
    return 1;
  }
  return 1;
}

bool dtypeFromName(const std::string &name, DType &dtype) {
  for (DType d : {DType::F32, DType::F64, DType::I32, DType::I64, DType::U8})
    if (name == dtypeName(d)) {
      dtype = d;
      return true;
    }
  return false;
}

std::string formatShape(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

int64_t CheckpointTensor::elementCount() const {
  uint64_t n = 1;
  for (int64_t d : shape)
    n *= static_cast<uint64_t>(d);
  return static_cast<int64_t>(n);
}

const CheckpointTensor *Checkpoint::find(const std::string &name) const {
  for (const CheckpointTensor &t : tensors)
    if (t.name == name)
      return &t;
  return nullptr;
}

namespace {

/// The directory of `path`: "." for a bare name.
std::string directoryOf(const std::string &path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

/// Writes one file as a temporary beside `path`, flushed to disk; sets
/// `tmp` to its name. On failure no temporary is left.
bool writeTemporary(const std::string &path, const std::vector<TensorRef> &tensors,
                    const std::map<std::string, std::string> &metadata, std::string &tmp,
                    std::string &error) {
  auto fail = [&](const std::string &what) {
    error = path + ": " + what;
    return false;
  };
  if (path.empty()) {
    error = "cannot save a checkpoint: the file name is empty";
    return false;
  }
  // Check everything before creating a file.
  std::vector<uint64_t> bytes(tensors.size());
  std::set<std::string> names;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorRef &t = tensors[i];
    std::string q = "tensor " + quoted(t.name);
    if (invalidUtf8(t.name) != std::string::npos)
      return fail("the name of " + q + " is not valid UTF-8");
    if (t.name == "__metadata__")
      return fail("a tensor cannot be named '__metadata__': the format reserves that key");
    if (!names.insert(t.name).second)
      return fail("two tensors are named " + quoted(t.name));
    for (int64_t d : t.shape)
      if (d < 0)
        return fail(q + " has a negative dimension in its shape " + formatShape(t.shape));
    if (!byteSize(t.shape, dtypeSize(t.dtype), bytes[i]))
      return fail(q + " has shape " + formatShape(t.shape) + " of " + dtypeName(t.dtype) +
                  ", whose size in bytes does not fit in 64 bits");
    if (bytes[i] > 0 && t.data == nullptr)
      return fail(q + " has shape " + formatShape(t.shape) + " but no data");
  }
  for (const auto &[key, value] : metadata) {
    if (invalidUtf8(key) != std::string::npos)
      return fail("metadata key " + quoted(key) + " is not valid UTF-8");
    if (invalidUtf8(value) != std::string::npos)
      return fail("metadata " + quoted(key) + " is not valid UTF-8");
  }

  // The reference writer's layout: by dtype rank descending, then by name.
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    int ra = referenceRank(tensors[a].dtype), rb = referenceRank(tensors[b].dtype);
    return ra != rb ? ra > rb : tensors[a].name < tensors[b].name;
  });
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto &[key, value] : metadata) {
      if (!first)
        header += ',';
      first = false;
      appendJsonString(header, key);
      header += ':';
      appendJsonString(header, value);
    }
    header += '}';
  }
  uint64_t offset = 0;
  for (size_t i : order) {
    const TensorRef &t = tensors[i];
    if (header.size() > 1)
      header += ',';
    appendJsonString(header, t.name);
    header += ":{\"dtype\":\"";
    header += dtypeName(t.dtype);
    header += "\",\"shape\":[";
    for (size_t k = 0; k < t.shape.size(); ++k)
      header += (k ? "," : "") + std::to_string(t.shape[k]);
    if (bytes[i] > kU64Max - offset)
      return fail("the tensors together take more than 2^64 bytes");
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," +
              std::to_string(offset + bytes[i]) + "]}";
    offset += bytes[i];
  }
  header += '}';
  header.append((8 - header.size() % 8) % 8, ' ');
  uint8_t size[8];
  for (int k = 0; k < 8; ++k)
    size[k] = static_cast<uint8_t>(static_cast<uint64_t>(header.size()) >> (8 * k));

  // Write beside the target and sync; the caller renames it over the target.
  tmp = path + ".tmp-" + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0)
    return fail("cannot create a temporary file in " + directoryOf(path) + ": " +
                std::strerror(errno));
  auto abandon = [&](const std::string &what) {
    std::string reason = what + ": " + std::strerror(errno);
    if (fd >= 0)
      ::close(fd);
    ::unlink(tmp.c_str());
    return fail(reason);
  };
  const std::string writing = "cannot write it (nothing was replaced)";
  if (!writeAll(fd, size, sizeof size) || !writeAll(fd, header.data(), header.size()))
    return abandon(writing);
  for (size_t i : order)
    if (!writeElements(fd, tensors[i].data, bytes[i], dtypeSize(tensors[i].dtype)))
      return abandon(writing);
  if (::fsync(fd) != 0)
    return abandon("cannot flush it to disk (nothing was replaced)");
  int closed = ::close(fd);
  fd = -1;
  if (closed != 0)
    return abandon(writing);
  return true;
}

} // namespace

bool saveSafetensorsFiles(const std::vector<SafetensorsFile> &files, std::string &error) {
  // Every file written in full before any is renamed: a failure (a full
  // disk, a file-size limit) replaces nothing.
  std::vector<std::string> temporaries;
  auto removeFrom = [&](size_t first) {
    for (size_t i = first; i < temporaries.size(); ++i)
      ::unlink(temporaries[i].c_str());
  };
  for (const SafetensorsFile &f : files) {
    std::string tmp;
    if (!writeTemporary(f.path, f.tensors, f.metadata, tmp, error)) {
      removeFrom(0);
      return false;
    }
    temporaries.push_back(tmp);
  }
  for (size_t i = 0; i < files.size(); ++i)
    if (::rename(temporaries[i].c_str(), files[i].path.c_str()) != 0) {
      error = files[i].path + ": cannot rename the temporary file over it: " +
              std::strerror(errno);
      removeFrom(i);
      return false;
    }
  // Make the renames durable. Best effort: the files are complete and in
  // place either way; some file systems cannot sync a directory.
  for (const SafetensorsFile &f : files) {
    int dirFd = ::open(directoryOf(f.path).c_str(), O_RDONLY | O_CLOEXEC);
    if (dirFd >= 0) {
      int synced = ::fsync(dirFd);
      (void)synced;
      ::close(dirFd);
    }
  }
  return true;
}

bool saveSafetensors(const std::string &path, const std::vector<TensorRef> &tensors,
                     const std::map<std::string, std::string> &metadata, std::string &error) {
  return saveSafetensorsFiles({{path, tensors, metadata}}, error);
}

bool loadSafetensors(const std::string &path, Checkpoint &out, std::string &error) {
  auto fail = [&](const std::string &what) {
    error = path + ": " + what;
    return false;
  };
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return fail(std::strerror(errno));
  if (S_ISDIR(st.st_mode))
    return fail("is a directory, not a safetensors file");
  if (!S_ISREG(st.st_mode))
    return fail("is not a regular file");
  std::unique_ptr<FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file)
    return fail(std::strerror(errno));
  if (::fstat(::fileno(file.get()), &st) != 0)
    return fail(std::strerror(errno));
  uint64_t fileBytes = static_cast<uint64_t>(st.st_size);
  // Reads exactly n bytes, or explains why not.
  auto readExactly = [&](void *dst, size_t n, const std::string &what) {
    if (std::fread(dst, 1, n, file.get()) == n)
      return true;
    if (std::ferror(file.get()))
      return fail("cannot be read: " + std::string(std::strerror(errno)));
    return fail("is truncated: it ended while reading " + what + " (did it change while " +
                "being read?)");
  };

  if (fileBytes == 0)
    return fail("is empty");
  if (fileBytes < 8)
    return fail("is too short to be a safetensors file: it has " + bytesText(fileBytes) +
                ", and the header size alone takes 8");
  uint8_t sizeBytes[8];
  if (!readExactly(sizeBytes, 8, "the header size"))
    return false;
  uint64_t headerBytes = 0;
  for (int k = 7; k >= 0; --k)
    headerBytes = headerBytes << 8 | sizeBytes[k];
  if (headerBytes > kMaxSafetensorsHeader)
    return fail("its header size field says " + bytesText(headerBytes) +
                ", more than the limit of " + std::to_string(kMaxSafetensorsHeader) +
                " (is it a safetensors file?)");
  if (headerBytes > fileBytes - 8)
    return fail("is truncated: its header size field says " + bytesText(headerBytes) +
                " but only " + std::to_string(fileBytes - 8) + " follow it");
  std::string header(static_cast<size_t>(headerBytes), '\0');
  if (!readExactly(&header[0], header.size(), "the header"))
    return false;
  size_t badByte = invalidUtf8(header);
  if (badByte != std::string::npos)
    return fail("the header is not valid UTF-8 (byte " + std::to_string(badByte) +
                " of the header)");

  std::vector<Entry> entries;
  Checkpoint result;
  std::string why;
  std::vector<size_t> order;
  if (!parseHeader(header, entries, result.metadata, why) ||
      !checkLayout(entries, fileBytes - 8 - headerBytes, order, why))
    return fail(why);

  // The data: the tensors in file order are contiguous from the header on.
  result.path = path;
  result.tensors.resize(entries.size());
  bool little = hostIsLittleEndian();
  for (size_t i : order) {
    Entry &e = entries[i];
    CheckpointTensor &t = result.tensors[i];
    t.name = std::move(e.name);
    t.dtype = e.dtype;
    t.shape = std::move(e.shape);
    t.data.resize(static_cast<size_t>(e.bytes));
    if (!readExactly(t.data.data(), t.data.size(), "the data of tensor " + quoted(t.name)))
      return false;
    if (!little)
      swapElements(t.data.data(), t.data.size(), dtypeSize(t.dtype));
  }
  out = std::move(result);
  return true;
}

bool checkpointMatches(const Checkpoint &checkpoint, const std::vector<TensorSpec> &model,
                       std::string &error) {
  auto fail = [&](const std::string &what) {
    error = checkpoint.path + ": " + what;
    return false;
  };
  std::map<std::string, const CheckpointTensor *> byName;
  for (const CheckpointTensor &t : checkpoint.tensors)
    byName.emplace(t.name, &t);
  std::set<std::string> wanted;
  for (const TensorSpec &spec : model) {
    wanted.insert(spec.name);
    auto it = byName.find(spec.name);
    if (it == byName.end())
      return fail("the model has " + quoted(spec.name) + " but the checkpoint does not");
    const CheckpointTensor &t = *it->second;
    if (t.dtype != spec.dtype)
      return fail("tensor " + quoted(spec.name) + " has dtype " + dtypeName(t.dtype) +
                  " but the model's is " + dtypeName(spec.dtype));
    if (t.shape != spec.shape)
      return fail("tensor " + quoted(spec.name) + " has shape " + formatShape(t.shape) +
                  " but the model's is " + formatShape(spec.shape));
  }
  for (const CheckpointTensor &t : checkpoint.tensors)
    if (wanted.count(t.name) == 0)
      return fail("the checkpoint has " + quoted(t.name) + ", which the model does not");
  return true;
}

} // namespace nnc_rt
