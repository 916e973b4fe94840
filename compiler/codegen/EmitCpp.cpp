// EmitCpp.cpp — loop IR to one C++17 translation unit (see EmitCpp.h).
//
// The emitted code means what JIT.cpp's LLVM IR means, node for node:
//   - every Fma is std::fma on floats (llvm.fma); every other operation is
//     the one IEEE operation the JIT emits, in the same order (the
//     expression tree is printed with exactly the parentheses it needs);
//     `#pragma GCC optimize("fp-contract=off")` keeps GCC from fusing any
//     other multiply and add;
//   - exp, log, tanh, erf and cos call libm's float functions (expf, …) as
//     the JIT does; sqrt is the correctly rounded instruction (llvm.sqrt),
//     floor llvm.floor; pow is powf but where LLVM's simplification of
//     library calls rewrites it (pow(2^n, x) → exp2f(n·x), pow(x, 2) → x·x,
//     …: see pow()), and a libm call on constants is the value LLVM's
//     constant folder gives it (fold());
//   - max and min are the JIT's compare and select (`fcmp ugt`/`fcmp ult`:
//     the first operand when the comparison holds or is unordered), not
//     std::max; select is `a > 0` (`fcmp ogt`), select-eq an integer `==`,
//     both with every operand evaluated, as a select does;
//   - a parallel loop at the top level is a kernel the runtime's
//     nnc_parallel_for calls with the JIT's range and cost, so the work is
//     split the same way; the statements between parallel loops are a
//     kernel the main function calls. A kernel receives the buffers it
//     touches as __restrict parameters: within one fused group (a top-level
//     statement) distinct buffers never overlap, which the JIT says with
//     alias scopes (GCC heeds restrict on parameters, not on locals);
//   - lanes loops the JIT turns into vector code run statement by
//     statement across the lanes, as its vectors do: the locals that differ
//     between lanes are arrays, the others scalars (every lane of the JIT's
//     vector holds the same value), each statement a loop over the lanes
//     that `#pragma GCC unroll` unrolls before GCC's scalar replacement, so
//     that its SLP vectorizer keeps the arrays in vector registers;
//   - GCC schedules before register allocation, pressure-aware (a pragma):
//     otherwise its register allocator, tuned for AMD or generic x86, gives
//     a loaded vector two fmas read no register, and each fma loads it again
//     (the dense layers' inner loops: 10 loads for 8 fmas where the JIT's
//     have 6; those loops ran ~15% slower);
//   - no predictive commoning (a pragma): in the convolutions' tiles the
//     loads of neighbouring kernel columns overlap, and GCC carried them
//     from one iteration to the next as shuffled scalars, spilling the sums.
#include "codegen/EmitCpp.h"

#include "loops/Lanes.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cfenv>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <vector>

namespace nnc {

using namespace loops;

namespace {


// ---- names and literals ----

bool isKeyword(const std::string &w) {
  static const std::set<std::string> words = {
      "alignas", "alignof", "and", "and_eq", "asm", "auto", "bitand", "bitor", "bool", "break",
      "case", "catch", "char", "char8_t", "char16_t", "char32_t", "class", "compl", "concept",
      "const", "consteval", "constexpr", "constinit", "const_cast", "continue", "co_await",
      "co_return", "co_yield", "decltype", "default", "delete", "do", "double", "dynamic_cast",
      "else", "enum", "explicit", "export", "extern", "false", "float", "for", "friend", "goto",
      "if", "inline", "int", "long", "mutable", "namespace", "new", "noexcept", "not", "not_eq",
      "nullptr", "operator", "or", "or_eq", "private", "protected", "public", "register",
      "reinterpret_cast", "requires", "return", "short", "signed", "sizeof", "static",
      "static_assert", "static_cast", "struct", "switch", "template", "this", "thread_local",
      "throw", "true", "try", "typedef", "typeid", "typename", "union", "unsigned", "using",
      "virtual", "void", "volatile", "wchar_t", "while", "xor", "xor_eq",
      // names the emitted code uses itself
      "N", "buffers", "context", "c", "begin", "end", "std", "Context", "int64_t", "uint64_t",
      "max_f32", "min_f32", "max_i64", "min_i64", "select_gt0", "select_eq", "select_eq_i64",
      "main", "nnc_parallel_for", "nnc_uniform01", "nnc_rt", "fma", "INFINITY", "NAN", "sqrtf",
      "opaque"};
  return words.count(w) > 0;
}

/// A C identifier for a buffer called `name` ("fc1.weight'" → fc1_weight_next).
std::string identifier(const std::string &name) {
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    unsigned char ch = static_cast<unsigned char>(name[i]);
    if (std::isalnum(ch) && ch < 128) {
      out += static_cast<char>(ch);
      continue;
    }
    std::string piece = ch == '\'' ? "_next" : ch == '@' ? "at_" : "_";
    for (char p : piece)
      if (p != '_' || (!out.empty() && out.back() != '_'))
        out += p;
  }
  while (!out.empty() && out.back() == '_')
    out.pop_back();
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0])))
    out = "b_" + out;
  // i<k> and s<k> are the loop IR's variables
  if ((out[0] == 'i' || out[0] == 's') && out.size() > 1 &&
      out.find_first_not_of("0123456789", 1) == std::string::npos)
    out = "b_" + out;
  if (isKeyword(out))
    out += "_";
  return out;
}

/// The float nearest `v` (as the JIT's ConstantFP::get(float, v) rounds it),
/// in the shortest decimal that reads back to exactly that float.
std::string floatLiteral(double v) {
  float x = static_cast<float>(v);
  if (std::isnan(x))
    return "std::numeric_limits<float>::quiet_NaN()";
  if (std::isinf(x))
    return x > 0 ? "std::numeric_limits<float>::infinity()"
                 : "-std::numeric_limits<float>::infinity()";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, x);
  if (ec != std::errc())
    throw std::logic_error("internal error: cannot print the constant " + std::to_string(v));
  std::string s(buf, end);
  if (s.find_first_of(".e") == std::string::npos)
    s += ".0";
  return s + "f";
}

std::string intLiteral(int64_t v) {
  if (v == INT64_MIN)
    return "(-9223372036854775807 - 1)";
  return std::to_string(v);
}

/// One line of a comment: no line breaks, no trailing backslash.
std::string commentText(const std::string &text) {
  std::string out;
  for (char ch : text)
    out += ch == '\n' || ch == '\r' ? ' ' : ch;
  while (!out.empty() && (out.back() == '\\' || out.back() == ' '))
    out.pop_back();
  return out;
}

/// The layers a group's comment names ("fc1 (dense) + relu_1 (relu)" →
/// fc1_relu_1), for the names of its kernels.
std::string layersOf(const std::string &comment) {
  std::string out;
  std::set<std::string> seen;
  size_t at = 0;
  while (at < comment.size()) {
    size_t plus = comment.find(" + ", at);
    std::string part = comment.substr(at, plus == std::string::npos ? std::string::npos : plus - at);
    at = plus == std::string::npos ? comment.size() : plus + 3;
    part = part.substr(0, part.find(" ("));
    std::string id = identifier(part);
    if (id.rfind("b_", 0) == 0 || !seen.insert(id).second)
      continue;
    if (out.size() + id.size() > 40)
      break;
    out += (out.empty() ? "" : "_") + id;
  }
  return out;
}

/// `i7` or `s7`: the printer's names of loop indices and locals.
std::string varName(char kind, int v) {
  std::string out(1, kind);
  out += std::to_string(v);
  return out;
}

// Expression precedences, C++'s.
constexpr int kPrimary = 16, kUnary = 15, kMul = 13, kAdd = 12;

struct Code {
  std::string text;
  int prec = kPrimary;
};

/// Every variable read in `e` (into `out`).
void readsOf(const Expr &e, std::set<int> &out) {
  if (e.kind == ExprKind::Var)
    out.insert(e.var);
  for (const ExprRef &x : {e.a, e.b, e.c, e.d})
    if (x)
      readsOf(*x, out);
}
void readsOf(const Stmt &s, std::set<int> &out) {
  for (const ExprRef &x : {s.extent, s.index, s.value, s.cost})
    if (x)
      readsOf(*x, out);
  for (const Stmt &b : s.body)
    readsOf(b, out);
}

/// Whether `e` is index arithmetic: constants, N and loop indices only.
bool indexOnly(const Expr &e) {
  switch (e.kind) {
  case ExprKind::Const:
  case ExprKind::Batch:
    return true;
  case ExprKind::Var:
    return e.type == Type::I64;
  case ExprKind::Binary:
    return indexOnly(*e.a) && indexOnly(*e.b);
  case ExprKind::Load:
  case ExprKind::Unary:
  case ExprKind::Fma:
  case ExprKind::Select:
  case ExprKind::SelectEq:
  case ExprKind::Random:
    return false;
  }
  return false;
}

/// The locals a lanes loop's body sets, in order (the JIT's vectors).
void localsOf(const Stmt &s, std::vector<int> &out) {
  if ((s.kind == StmtKind::Local || s.kind == StmtKind::Assign) &&
      std::find(out.begin(), out.end(), s.var) == out.end())
    out.push_back(s.var);
  for (const Stmt &b : s.body)
    localsOf(b, out);
}

/// A constant of the loop IR, f32 or i64.
struct Constant {
  float f = 0;
  int64_t i = 0;
};

/// `fn(x)` in double, rounded to float, as LLVM's constant folder computes a
/// libm call on a constant (ConstantFoldFP: the host's double function; no
/// folding when it raises anything but inexact or sets errno).
std::optional<float> foldLibm(double (*fn)(double), double x) {
  std::feclearexcept(FE_ALL_EXCEPT);
  errno = 0;
  double r = fn(x);
  bool raised = errno == EDOM || errno == ERANGE || std::fetestexcept(FE_ALL_EXCEPT & ~FE_INEXACT);
  std::feclearexcept(FE_ALL_EXCEPT);
  errno = 0;
  if (raised)
    return std::nullopt;
  return static_cast<float>(r);
}
std::optional<float> foldPow(double x, double y) {
  std::feclearexcept(FE_ALL_EXCEPT);
  errno = 0;
  double r = std::pow(x, y);
  bool raised = errno == EDOM || errno == ERANGE || std::fetestexcept(FE_ALL_EXCEPT & ~FE_INEXACT);
  std::feclearexcept(FE_ALL_EXCEPT);
  errno = 0;
  if (raised)
    return std::nullopt;
  return static_cast<float>(r);
}

double libmExp(double x) { return std::exp(x); }
double libmLog(double x) { return std::log(x); }
double libmTanh(double x) { return std::tanh(x); }
double libmCos(double x) { return std::cos(x); }

class Emitter {
public:
  Emitter(const Function &f, std::string symbol, CppOptions options)
      : f_(f), symbol_(std::move(symbol)), options_(std::move(options)), rules_(f) {
    std::set<std::string> taken;
    for (const Buffer &b : f_.buffers) {
      std::string id = identifier(b.name);
      if (taken.count(id))
        id += '_' + std::to_string(names_.size());
      taken.insert(id);
      names_.push_back(id);
    }
    readsOf(f_.body, read_);
    constantLocals();
  }

  std::string run() {
    std::string body = mainFunction();
    std::string out;
    out += "#if defined(__clang__)\n"
           "#pragma clang fp contract(off)\n"
           "#else\n"
           "#pragma GCC optimize(\"fp-contract=off\")\n"
           "#pragma GCC optimize(\"no-loop-interchange\") // the loop IR's loop order, as the JIT's\n"
           "// Register-pressure-aware scheduling before register allocation: without\n"
           "// it GCC (tuned for AMD's and generic x86) reloads a vector two fmas share\n"
           "// from memory for each (two loads where the JIT makes one), which bounds\n"
           "// the dense layers' inner loops by the loads. Scheduling only: the same numbers.\n"
           "#pragma GCC optimize(\"schedule-insns\", \"sched-pressure\")\n"
           "// No predictive commoning: in a convolution's tiles the loads of neighbouring\n"
           "// kernel columns overlap, and GCC then carries them from one iteration to the\n"
           "// next as shuffled scalars, spilling the sums (the loops ran 4-5x slower than\n"
           "// the JIT's). Which loads are reused only: the same numbers.\n"
           "#pragma GCC optimize(\"no-predictive-commoning\")\n"
           "#endif\n";
    out += "// " + symbol_ + ": the loop-IR function `" + f_.name + "`" +
           (options_.source.empty() ? "" : " of " + commentText(options_.source)) +
           ", emitted by nnc as C++17.\n"
           "// Each group of loops is commented with the layers it computes and the line\n"
           "// of the .nn file they are written on.\n"
           "//\n"
           "// Same numbers as nnc's JIT, bit for bit: every fma is std::fma, every other\n"
           "// operation the one IEEE operation the loop IR says, in its order, and the\n"
           "// compiler may contract nothing (the pragmas above). " +
           (options_.serial
                ? "Parallel loops run on the\n"
                  "// calling thread, in one piece, as the JIT's do on one thread.\n"
                : "Parallel loops run on the\n"
                  "// runtime's thread pool (Parallel.h), split as the JIT splits them.\n") +
           "//\n"
           "// " + (options_.serial ? "static" : "extern \"C\"") + " void " +
           symbol_ +
           "(float **buffers, int64_t N): N is the batch (1 <= N <= " +
           std::to_string(f_.capacity) +
           ");\n"
           "// the buffers, in order (float *, or int64_t * for labels; temporaries may\n"
           "// share memory when their lifetimes do not overlap):\n";
    for (size_t i = 0; i < f_.buffers.size(); ++i) {
      const Buffer &b = f_.buffers[i];
      std::string line = "//   [" + std::to_string(i) + "] " + kindName(b.kind) + " " + b.name +
                         ": " + (b.type == Type::I64 ? "i64[" : "f32[") +
                         (b.batched ? "N * " : "") + std::to_string(b.perExample) + "]";
      if (b.kind == BufferKind::Temp)
        line += " @ arena + " + std::to_string(b.offset);
      if (b.updates >= 0)
        line += " -> next " + f_.buffers[static_cast<size_t>(b.updates)].name;
      out += commentText(line) + "\n";
    }
    out += "//   arena: " + std::to_string(f_.arenaElements) + " floats for a batch of " +
           std::to_string(f_.capacity) + "\n";
    out += "#include <cmath>\n#include <cstdint>\n";
    if ((body + kernels_).find("std::numeric_limits") != std::string::npos)
      out += "#include <limits>\n";
    if (sqrt_)
      out += "#include <math.h>\n";
    if (random_ && options_.serial)
      throw std::logic_error("internal error: emitCpp: random numbers in serial code (it has no "
                             "runtime to draw them from)");
    if (!options_.serial)
      out += "\n#include \"Parallel.h\"\n";
    if (random_)
      out += "#include \"Random.h\"\n";
    if (sqrt_)
      out += "\n// Square roots are the JIT's llvm.sqrt: the correctly rounded instruction,\n"
             "// which sets no errno. GCC keeps a call of sqrtf in case errno must be set,\n"
             "// which stops it vectorizing loops of square roots, unless it knows sqrtf\n"
             "// as a const function (or is given -fno-math-errno).\n"
             "#if defined(__GNUC__) && !defined(__clang__) && defined(__GLIBC__)\n"
             "extern \"C\" float sqrtf(float) noexcept __attribute__((const));\n"
             "#endif\n";
    out += "\nnamespace {\n";
    out += helpers();
    if (parallelCalls_)
      out += "\n/// What the body of every parallel loop receives.\n"
             "struct Context {\n  float **buffers;\n  int64_t N;\n};\n";
    out += kernels_;
    out += "\n} // namespace\n\n";
    out += body;
    return out;
  }

private:
  std::string helpers() const {
    std::string out;
    auto add = [&](const char *name, const char *text) {
      if (helpers_.count(name))
        out += text;
    };
    if (helpers_.count("max_f32") || helpers_.count("min_f32"))
      out += "\n// The JIT's max and min of floats (a compare and a select): the first\n"
             "// operand when it is larger (smaller) or either is a NaN, else the second.\n";
    add("max_f32", "inline float max_f32(float a, float b) { return !(a <= b) ? a : b; }\n");
    add("min_f32", "inline float min_f32(float a, float b) { return !(a >= b) ? a : b; }\n");
    add("max_i64", "inline int64_t max_i64(int64_t a, int64_t b) { return a > b ? a : b; }\n");
    add("min_i64", "inline int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }\n");
    add("opaque", "// A constant the JIT does not fold: GCC must not fold it either.\n"
                  "inline float opaque(float x) {\n  volatile float v = x;\n  return v;\n}\n");
    if (helpers_.count("select_gt0") || helpers_.count("select_eq") || helpers_.count("select_eq_i64"))
      out += "// Selects, with every operand evaluated (as the JIT's select).\n";
    add("select_gt0", "inline float select_gt0(float c, float a, float b) { return c > 0.0f ? a : b; }\n");
    add("select_eq",
        "inline float select_eq(int64_t x, int64_t y, float a, float b) { return x == y ? a : b; }\n");
    add("select_eq_i64", "inline int64_t select_eq_i64(int64_t x, int64_t y, int64_t a, int64_t b) {\n"
                         "  return x == y ? a : b;\n}\n");
    return out;
  }

  // ---- the C++ function being written ----

  struct Fn {
    std::string out;
    int indent = 1;
    std::vector<std::set<int>> scopes; ///< variables declared, innermost last
    std::set<int> hoisted;             ///< declared at the top of the function
    std::set<int> refs;                ///< the main function's locals, by reference
    std::set<int> touched;             ///< the refs used
    bool raw = false;                  ///< loads straight from `buffers` (the main function)
    bool usesN = false;
    int depth = 0;                     ///< loops open (the JIT's depth_)
    std::set<int> used, stored;        ///< buffers: the kernel's parameters
    // a lanes loop being written
    bool lanes = false;
    int laneVar = -1;
    int64_t width = 0;
    std::set<int> arrays; ///< its locals that differ between lanes
  };

  void line(const std::string &text) {
    fn_->out += std::string(static_cast<size_t>(fn_->indent) * 2, ' ') + text + "\n";
  }
  void comment(const std::string &text) {
    std::string c = commentText(text);
    if (!c.empty())
      line("// " + c);
  }

  /// Whether local `v` is declared where the kernel being written is.
  bool visible(int v) {
    for (const std::set<int> &s : fn_->scopes)
      if (s.count(v))
        return true;
    if (fn_->hoisted.count(v))
      return true;
    if (fn_->refs.count(v)) {
      fn_->touched.insert(v);
      return true;
    }
    return false;
  }
  void declare(int v) { fn_->scopes.back().insert(v); }

  /// `void name(a, b, …) {`, wrapped at 100 columns.
  static std::string signature(const std::string &name, const std::vector<std::string> &params) {
    std::string head = "void " + name + "(", out = head;
    size_t column = head.size();
    for (size_t i = 0; i < params.size(); ++i) {
      std::string piece = params[i] + (i + 1 < params.size() ? "," : ") {");
      if (i > 0 && column + 1 + piece.size() > 100) {
        out += "\n" + std::string(head.size(), ' ');
        column = head.size();
      } else if (i > 0) {
        out += " ";
        ++column;
      }
      out += piece;
      column += piece.size();
    }
    if (params.empty())
      out += ") {";
    return out + "\n";
  }

  /// The arguments a kernel's caller passes: its buffers from `array`
  /// (cast for labels), the main function's locals, N.
  std::vector<std::string> arguments(const Fn &k, const std::string &array, const std::string &n) {
    std::vector<std::string> args;
    for (int b : k.used) {
      std::string from = array + "[" + std::to_string(b) + "]";
      if (f_.buffers[static_cast<size_t>(b)].type == Type::I64)
        from = std::string("reinterpret_cast<") + (k.stored.count(b) ? "" : "const ") +
               "int64_t *>(" + from + ")";
      args.push_back(from);
    }
    for (int v : k.touched)
      args.push_back(varName('s', v));
    if (k.usesN)
      args.push_back(n);
    return args;
  }

  /// `name(a, b, …);` at `indent`, wrapped at 100 columns.
  static std::string callText(const std::string &name, const std::vector<std::string> &args,
                              int indent) {
    std::string pad(static_cast<size_t>(indent) * 2, ' ');
    std::string out = pad + name + "(";
    size_t column = out.size(), align = out.size();
    for (size_t i = 0; i < args.size(); ++i) {
      std::string piece = args[i] + (i + 1 < args.size() ? "," : ");");
      if (i > 0 && column + 1 + piece.size() > 100) {
        out += "\n" + std::string(align, ' ');
        column = align;
      } else if (i > 0) {
        out += " ";
        ++column;
      }
      out += piece;
      column += piece.size();
    }
    if (args.empty())
      out += ");";
    return out + "\n";
  }

  /// Writes a kernel into kernels_: a function of the buffers it touches,
  /// each a __restrict parameter (within one fused group distinct buffers
  /// never overlap; GCC heeds restrict on parameters, not on locals), the
  /// main function's locals `refs` by reference, N, and [begin, end) when
  /// `ranged` (a parallel loop's body). `emit` writes its statements; a
  /// local read outside the scope that declares it is declared up front
  /// (then the kernel is written again).
  Fn kernel(const std::string &name, const std::string &what, const std::set<int> &refs,
            bool ranged, const std::function<void()> &emit) {
    std::set<int> hoisted, outer = std::move(missing_);
    for (int pass = 0;; ++pass) {
      Fn k;
      k.refs = refs;
      k.hoisted = hoisted;
      k.scopes.emplace_back();
      Fn *saved = fn_;
      fn_ = &k;
      missing_.clear();
      emit();
      fn_ = saved;
      if (!missing_.empty()) {
        if (pass > 0)
          throw std::logic_error("internal error: emitCpp: variable s" +
                                 std::to_string(*missing_.begin()) + " read where it is not set");
        hoisted = missing_;
        continue;
      }
      std::vector<std::string> params;
      for (int b : k.used) {
        bool i64 = f_.buffers[static_cast<size_t>(b)].type == Type::I64;
        params.push_back(std::string(k.stored.count(b) ? "" : "const ") + (i64 ? "int64_t" : "float") +
                         " *__restrict " + names_[static_cast<size_t>(b)]);
      }
      for (int v : k.touched)
        params.push_back("float &" + varName('s', v));
      if (k.usesN)
        params.push_back("int64_t N");
      if (ranged) {
        params.push_back("int64_t begin");
        params.push_back("int64_t end");
      }
      std::string text = "\n// " + (what.empty() ? std::string("kernel") : commentText(what)) + "\n";
      text += signature(name, params);
      for (int v : hoisted)
        text += "  float " + varName('s', v) + " = 0.0f;\n";
      kernels_ += text + k.out + "}\n";
      missing_ = std::move(outer);
      return k;
    }
  }

  // ---- constants, as the JIT's optimizer folds them ----

  /// The value of `e` when it is a constant the JIT's code computes at
  /// compile time: constants, locals set once to one, and the operations
  /// on them that LLVM's constant folder evaluates (IEEE arithmetic, which
  /// GCC folds the same, and libm calls: expf, logf, tanhf, cosf, powf,
  /// evaluated as foldLibm says). erff is never folded by LLVM.
  std::optional<Constant> fold(const Expr &e) const {
    auto f = [](float v) { return std::optional<Constant>(Constant{v, 0}); };
    auto i = [](int64_t v) { return std::optional<Constant>(Constant{0, v}); };
    switch (e.kind) {
    case ExprKind::Const:
      return e.type == Type::I64 ? i(e.i) : f(static_cast<float>(e.f));
    case ExprKind::Var: {
      auto c = constants_.find(e.var);
      if (e.type == Type::F32 && c != constants_.end())
        return f(c->second);
      return std::nullopt;
    }
    case ExprKind::Batch:
    case ExprKind::Load:
    case ExprKind::Random:
      return std::nullopt;
    case ExprKind::Unary: {
      std::optional<Constant> a = fold(*e.a);
      if (!a)
        return std::nullopt;
      std::optional<float> r;
      switch (e.unary) {
      case UnaryOp::Neg:
        return f(-a->f);
      case UnaryOp::Exp:
        r = foldLibm(libmExp, a->f);
        break;
      case UnaryOp::Log:
        if (!std::signbit(a->f) && a->f != 0)
          r = foldLibm(libmLog, a->f);
        break;
      case UnaryOp::Sqrt:
        return f(std::sqrt(a->f));
      case UnaryOp::Tanh:
        r = foldLibm(libmTanh, a->f);
        break;
      case UnaryOp::Erf:
        break;
      case UnaryOp::Cos:
        r = foldLibm(libmCos, a->f);
        break;
      case UnaryOp::Floor:
        return f(std::floor(a->f));
      case UnaryOp::ToF32:
        return f(static_cast<float>(a->i));
      case UnaryOp::ToI64:
        if (!(std::fabs(a->f) < 9.2e18f))
          return std::nullopt;
        return i(static_cast<int64_t>(a->f));
      }
      return r ? f(*r) : std::nullopt;
    }
    case ExprKind::Binary: {
      std::optional<Constant> a = fold(*e.a), b = fold(*e.b);
      if (!a || !b)
        return std::nullopt;
      if (e.type == Type::I64) {
        switch (e.binary) {
        case BinaryOp::Add:
          return i(static_cast<int64_t>(static_cast<uint64_t>(a->i) + static_cast<uint64_t>(b->i)));
        case BinaryOp::Sub:
          return i(static_cast<int64_t>(static_cast<uint64_t>(a->i) - static_cast<uint64_t>(b->i)));
        case BinaryOp::Mul:
          return i(static_cast<int64_t>(static_cast<uint64_t>(a->i) * static_cast<uint64_t>(b->i)));
        case BinaryOp::Div:
          if (b->i == 0 || (b->i == -1 && a->i == INT64_MIN))
            return std::nullopt;
          return i(a->i / b->i);
        case BinaryOp::Max:
          return i(a->i > b->i ? a->i : b->i);
        case BinaryOp::Min:
          return i(a->i < b->i ? a->i : b->i);
        case BinaryOp::Pow:
          return std::nullopt;
        }
        return std::nullopt;
      }
      switch (e.binary) {
      case BinaryOp::Add:
        return f(a->f + b->f);
      case BinaryOp::Sub:
        return f(a->f - b->f);
      case BinaryOp::Mul:
        return f(a->f * b->f);
      case BinaryOp::Div:
        return f(a->f / b->f);
      case BinaryOp::Max:
        return f(!(a->f <= b->f) ? a->f : b->f);
      case BinaryOp::Min:
        return f(!(a->f >= b->f) ? a->f : b->f);
      case BinaryOp::Pow: {
        std::optional<float> r = foldPow(a->f, b->f);
        return r ? f(*r) : std::nullopt;
      }
      }
      return std::nullopt;
    }
    case ExprKind::Fma: {
      std::optional<Constant> a = fold(*e.a), b = fold(*e.b), c = fold(*e.c);
      if (!a || !b || !c)
        return std::nullopt;
      return f(std::fma(a->f, b->f, c->f));
    }
    case ExprKind::Select: {
      std::optional<Constant> a = fold(*e.a), b = fold(*e.b), c = fold(*e.c);
      if (!a || !b || !c)
        return std::nullopt;
      return a->f > 0 ? b : c;
    }
    case ExprKind::SelectEq: {
      std::optional<Constant> a = fold(*e.a), b = fold(*e.b), c = fold(*e.c), d = fold(*e.d);
      if (!a || !b || !c || !d)
        return std::nullopt;
      return a->i == b->i ? c : d;
    }
    }
    return std::nullopt;
  }

  /// The locals set exactly once (a Local, no Assign) to a constant.
  void constantLocals() {
    std::map<int, int> sets;
    std::map<int, const Expr *> value;
    std::vector<const Stmt *> todo{&f_.body};
    while (!todo.empty()) {
      const Stmt *t = todo.back();
      todo.pop_back();
      if (t->kind == StmtKind::Local || t->kind == StmtKind::Assign) {
        sets[t->var] += t->kind == StmtKind::Local ? 1 : 2;
        value[t->var] = t->value.get();
      }
      for (const Stmt &b : t->body)
        todo.push_back(&b);
    }
    for (bool changed = true; changed;) {
      changed = false;
      for (const auto &[v, count] : sets)
        if (count == 1 && !constants_.count(v))
          if (std::optional<Constant> c = fold(*value[v])) {
            constants_[v] = c->f;
            changed = true;
          }
    }
  }

  /// A libm call `name(e.a)`: its value when LLVM folds it, else the call,
  /// its constant operand (if constant) passed through opaque() so that GCC
  /// does not fold what LLVM leaves to run.
  Code libm(const char *name, const Expr &e) {
    if (std::optional<Constant> c = fold(e))
      return {floatLiteral(c->f) + " /* " + name + "(" + expr(*e.a).text + ") */"};
    if (fold(*e.a)) {
      helpers_.insert("opaque");
      return {std::string(name) + "(opaque(" + expr(*e.a).text + "))"};
    }
    return {call(name, {e.a.get()})};
  }

  // ---- expressions ----

  std::string var(const Expr &e) {
    if (e.type == Type::I64)
      return varName('i', e.var);
    std::string name = varName('s', e.var);
    if (fn_->lanes && fn_->arrays.count(e.var))
      return name + "[i" + std::to_string(fn_->laneVar) + "]";
    if (!visible(e.var))
      missing_.insert(e.var);
    return name;
  }

  static std::string wrap(const Code &c, int prec, bool right) {
    bool paren = c.prec < prec || (right && c.prec == prec) || (right && c.text[0] == '-');
    return paren ? "(" + c.text + ")" : c.text;
  }
  std::string call(const std::string &name, std::initializer_list<const Expr *> args) {
    std::string out = name + "(";
    bool first = true;
    for (const Expr *a : args) {
      out += (first ? "" : ", ") + expr(*a).text;
      first = false;
    }
    return out + ")";
  }
  std::string helper(const char *name, std::initializer_list<const Expr *> args) {
    helpers_.insert(name);
    return call(name, args);
  }

  Code expr(const Expr &e) {
    switch (e.kind) {
    case ExprKind::Const: {
      std::string t = e.type == Type::I64 ? intLiteral(e.i) : floatLiteral(e.f);
      return {t, t[0] == '-' ? kUnary : kPrimary};
    }
    case ExprKind::Batch:
      fn_->usesN = true;
      return {"N"};
    case ExprKind::Var:
      return {var(e)};
    case ExprKind::Load: {
      std::string index = expr(*e.a).text;
      if (fn_->raw) { // in the main function: straight from the array
        std::string from = "buffers[" + std::to_string(e.buffer) + "]";
        if (e.type == Type::I64)
          from = "reinterpret_cast<const int64_t *>(" + from + ")";
        return {from + "[" + index + "]"};
      }
      fn_->used.insert(e.buffer);
      return {names_[static_cast<size_t>(e.buffer)] + "[" + index + "]"};
    }
    case ExprKind::Unary: {
      switch (e.unary) {
      case UnaryOp::Neg:
        return {"-" + wrap(expr(*e.a), kUnary, true), kUnary};
      case UnaryOp::Exp:
        return libm("std::exp", e);
      case UnaryOp::Log:
        return libm("std::log", e);
      case UnaryOp::Sqrt: // llvm.sqrt; see run() for sqrtf
        sqrt_ = true;
        return {call("sqrtf", {e.a.get()})};
      case UnaryOp::Tanh:
        return libm("std::tanh", e);
      case UnaryOp::Erf:
        return libm("std::erf", e);
      case UnaryOp::Cos:
        return libm("std::cos", e);
      case UnaryOp::Floor:
        return {call("std::floor", {e.a.get()})};
      case UnaryOp::ToF32:
        return {"static_cast<float>(" + expr(*e.a).text + ")"};
      case UnaryOp::ToI64:
        return {"static_cast<int64_t>(" + expr(*e.a).text + ")"};
      }
      break;
    }
    case ExprKind::Binary: {
      bool ints = e.type == Type::I64;
      auto infix = [&](const char *op, int prec) {
        Code a = expr(*e.a), b = expr(*e.b);
        return Code{wrap(a, prec, false) + " " + op + " " + wrap(b, prec, true), prec};
      };
      switch (e.binary) {
      case BinaryOp::Add:
        return infix("+", kAdd);
      case BinaryOp::Sub:
        return infix("-", kAdd);
      case BinaryOp::Mul:
        return infix("*", kMul);
      case BinaryOp::Div:
        return infix("/", kMul);
      case BinaryOp::Max:
        return {helper(ints ? "max_i64" : "max_f32", {e.a.get(), e.b.get()})};
      case BinaryOp::Min:
        return {helper(ints ? "min_i64" : "min_f32", {e.a.get(), e.b.get()})};
      case BinaryOp::Pow:
        return pow(e);
      }
      break;
    }
    case ExprKind::Fma:
      return {call("std::fma", {e.a.get(), e.b.get(), e.c.get()})};
    case ExprKind::Select:
      return {helper("select_gt0", {e.a.get(), e.b.get(), e.c.get()})};
    case ExprKind::SelectEq:
      return {helper(e.type == Type::I64 ? "select_eq_i64" : "select_eq",
                     {e.a.get(), e.b.get(), e.c.get(), e.d.get()})};
    case ExprKind::Random:
      random_ = true;
      return {"nnc_uniform01(" + std::to_string(e.seed) + "ull, 0x" + hex(e.stream) + "ull, " +
              expr(*e.a).text + ")"};
    }
    throw std::logic_error("internal error: emitCpp: unknown expression");
  }

  static std::string hex(uint64_t v) {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, 16);
    (void)ec;
    return std::string(buf, end);
  }

  /// pow(a, b): what the JIT's call to powf becomes. LLVM's simplification
  /// of library calls (instcombine, no fast-math flags) rewrites calls with
  /// a constant operand, and the result must be the rewritten call's:
  ///   pow(1, x) → 1; pow(2^n, x) → exp2f(x · n) for a whole n, 0 < |n| < 64
  ///   (exp2f(x) for n = 1, exp2f(-x) for n = -1);
  ///   pow(x, -1) → 1 / x; pow(x, ±0) → 1; pow(x, 1) → x; pow(x, 2) → x · x.
  /// Every other pow stays a call of powf (pow(10, x) too: LLVM 14 does not
  /// use glibc's exp10f, nor pow(x, 0.5) → sqrt while powf may set errno).
  Code pow(const Expr &e) {
    if (std::optional<Constant> c = fold(e)) {
      std::string a = expr(*e.a).text, b = expr(*e.b).text; // in this order
      return {floatLiteral(c->f) + " /* pow(" + a + ", " + b + ") */"};
    }
    // an operand LLVM knows (a constant, or a local set once to one)
    if (std::optional<Constant> known = fold(*e.a)) {
      float base = known->f;
      if (base == 1.0f)
        return {floatLiteral(1.0)};
      int power = 0;
      if (base > 0 && std::isfinite(base) && std::frexp(base, &power) == 0.5f && power - 1 != 0 &&
          std::abs(power - 1) < 64) {
        int n = power - 1;
        Code x = expr(*e.b);
        if (n == 1)
          return {"std::exp2(" + x.text + ")"};
        if (n == -1)
          return {"std::exp2(-" + wrap(x, kUnary, true) + ")"};
        return {"std::exp2(" + wrap(x, kMul, false) + " * " + floatLiteral(n) + ")"};
      }
    }
    if (std::optional<Constant> known = fold(*e.b)) {
      float exponent = known->f;
      if (exponent == -1.0f)
        return {"1.0f / " + wrap(expr(*e.a), kMul, true), kMul};
      if (exponent == 0.0f)
        return {floatLiteral(1.0)};
      if (exponent == 1.0f)
        return expr(*e.a);
      if (exponent == 2.0f) {
        Code x = expr(*e.a);
        return {wrap(x, kMul, false) + " * " + wrap(x, kMul, true), kMul};
      }
    }
    return {call("std::pow", {e.a.get(), e.b.get()})};
  }

  // ---- statements ----

  void stmt(const Stmt &s, bool withComment = true) {
    if (withComment)
      comment(s.comment);
    switch (s.kind) {
    case StmtKind::Block:
      for (const Stmt &b : s.body)
        stmt(b);
      break;
    case StmtKind::For:
      if (s.lanes && !fn_->lanes && rules_.supported(s))
        lanesLoop(s);
      else if (s.parallel && fn_->depth == 0) // outlined by mainFunction
        throw std::logic_error("internal error: emitCpp: a parallel loop inside a kernel");
      else
        counted(s, "0", nullptr);
      break;
    case StmtKind::Store: {
      fn_->used.insert(s.buffer);
      fn_->stored.insert(s.buffer);
      std::string text = names_[static_cast<size_t>(s.buffer)] + "[" + expr(*s.index).text +
                         "] = " + expr(*s.value).text + ";";
      if (fn_->lanes)
        laneLine(text);
      else
        line(text);
      break;
    }
    case StmtKind::Local:
    case StmtKind::Assign: {
      std::string value = expr(*s.value).text;
      std::string name = varName('s', s.var);
      if (fn_->lanes) {
        if (fn_->arrays.count(s.var))
          laneLine(name + "[" + varName('i', fn_->laneVar) + "] = " + value + ";");
        else
          line(name + " = " + value + ";");
      } else if (s.kind == StmtKind::Local && !visible(s.var)) {
        declare(s.var);
        line(std::string(read_.count(s.var) ? "" : "[[maybe_unused]] ") + "float " + name +
             " = " + value + ";");
      } else {
        if (!visible(s.var))
          missing_.insert(s.var);
        line(name + " = " + value + ";");
      }
      break;
    }
    }
  }

  /// One statement of a lanes loop, for every lane.
  void laneLine(const std::string &text) {
    std::string lane = varName('i', fn_->laneVar);
    // Unrolled before GCC's scalar replacement, the lanes' arrays become
    // scalars its SLP vectorizer packs into vectors held in registers (as
    // the JIT's vectors are); left to the loop vectorizer they would live
    // on the stack.
    line("#pragma GCC unroll " + std::to_string(fn_->width));
    line("for (int64_t " + lane + " = 0; " + lane + " < " + std::to_string(fn_->width) + "; ++" +
         lane + ")");
    ++fn_->indent;
    line(text);
    --fn_->indent;
  }

  /// for (index = from; index < extent; ++index) body — `end` instead of the
  /// loop's extent in an outlined body.
  void counted(const Stmt &s, const std::string &from, const char *end) {
    std::string i = varName('i', s.var);
    std::string head;
    if (end) {
      head = "for (int64_t " + i + " = " + from + "; " + i + " < " + end + "; ++" + i + ") {";
    } else if (!indexOnly(*s.extent)) { // the JIT evaluates the extent once, before the loop
      head = "for (int64_t " + i + " = " + from + ", " + i + "_end = " + expr(*s.extent).text +
             "; " + i + " < " + i + "_end; ++" + i + ") {";
    } else {
      head = "for (int64_t " + i + " = " + from + "; " + i + " < " + expr(*s.extent).text + "; ++" +
             i + ") {";
    }
    line(head);
    ++fn_->indent;
    ++fn_->depth;
    fn_->scopes.emplace_back();
    for (const Stmt &b : s.body)
      stmt(b);
    fn_->scopes.pop_back();
    --fn_->depth;
    --fn_->indent;
    line("}");
  }

  /// A lanes loop the JIT runs as vectors: statement by statement, each for
  /// every lane.
  void lanesLoop(const Stmt &s) {
    std::vector<int> locals;
    for (const Stmt &b : s.body)
      localsOf(b, locals);
    // The locals whose value differs between lanes: those set from a load
    // that moves with the lane, or from another such local.
    rules_.var = s.var;
    std::set<int> arrays;
    for (bool changed = true; changed;) {
      changed = false;
      std::vector<const Stmt *> todo{&s};
      while (!todo.empty()) {
        const Stmt *t = todo.back();
        todo.pop_back();
        if ((t->kind == StmtKind::Local || t->kind == StmtKind::Assign) && !arrays.count(t->var) &&
            !uniform(*t->value, s.var, arrays)) {
          arrays.insert(t->var);
          changed = true;
        }
        for (const Stmt &b : t->body)
          todo.push_back(&b);
      }
    }
    rules_.var = -1;
    std::string lanes = std::to_string(s.extent->i);
    line("{ // lanes i" + std::to_string(s.var) + " in 0.." + lanes + ", as vectors");
    ++fn_->indent;
    fn_->scopes.emplace_back();
    std::string scalars, vectors;
    bool unusedScalar = false, unusedVector = false;
    for (int v : locals) {
      bool unused = !read_.count(v);
      if (arrays.count(v)) {
        vectors += std::string(vectors.empty() ? "" : ", ") + 's' + std::to_string(v) + '[' + lanes + ']';
        unusedVector = unusedVector || unused;
      } else {
        scalars += std::string(scalars.empty() ? "" : ", ") + 's' + std::to_string(v) + " = 0.0f";
        unusedScalar = unusedScalar || unused;
      }
      declare(v);
    }
    if (!scalars.empty())
      line(std::string(unusedScalar ? "[[maybe_unused]] " : "") + "float " + scalars + ";");
    if (!vectors.empty())
      line(std::string(unusedVector ? "[[maybe_unused]] " : "") + "float " + vectors + ";");
    fn_->lanes = true;
    fn_->laneVar = s.var;
    fn_->width = s.extent->i;
    fn_->arrays = arrays;
    for (const Stmt &b : s.body)
      stmt(b);
    fn_->lanes = false;
    fn_->laneVar = -1;
    fn_->arrays.clear();
    fn_->scopes.pop_back();
    --fn_->indent;
    line("}");
  }

  /// Whether `e` has the same value in every lane of lane variable `lane`
  /// (`arrays`: the locals known to differ).
  bool uniform(const Expr &e, int lane, const std::set<int> &arrays) const {
    switch (e.kind) {
    case ExprKind::Const:
    case ExprKind::Batch:
      return true;
    case ExprKind::Var:
      return e.type == Type::I64 ? e.var != lane : !arrays.count(e.var);
    case ExprKind::Load:
      return rules_.step(*e.a) == 0;
    case ExprKind::Unary:
    case ExprKind::Binary:
    case ExprKind::Fma:
    case ExprKind::Select:
    case ExprKind::SelectEq:
    case ExprKind::Random:
      break;
    }
    for (const ExprRef &x : {e.a, e.b, e.c, e.d})
      if (x && !uniform(*x, lane, arrays))
        return false;
    return true;
  }

  // ---- the main function: groups of kernels ----

  /// A statement of a group, flattened, or a comment.
  struct Item {
    const Stmt *stmt = nullptr;
    std::string comment;
  };
  /// A group's pieces in order: a parallel loop at the top level (a kernel
  /// the pool runs, as the JIT outlines it), a run of other statements (a
  /// kernel the main function calls), or comments between them.
  struct Segment {
    enum Kind { Parallel, Run, Comments } kind = Run;
    std::vector<Item> items;
  };

  /// Whether `s`, at the top level, is a loop the JIT outlines and hands to
  /// nnc_parallel_for (JIT.cpp: Emitter::stmt, `outlined`).
  bool outlinedLoop(const Stmt &s) {
    return s.kind == StmtKind::For && s.parallel && !(s.lanes && rules_.supported(s));
  }

  void flatten(const Stmt &s, bool withComment, std::vector<Item> &out) {
    if (withComment && !s.comment.empty())
      out.push_back({nullptr, s.comment});
    if (s.kind == StmtKind::Block) {
      for (const Stmt &b : s.body)
        flatten(b, true, out);
      return;
    }
    Item item;
    item.stmt = &s; // written without its comment, an item of its own
    out.push_back(item);
  }

  std::vector<Segment> segments(const Stmt &group) {
    std::vector<Item> items;
    flatten(group, false, items);
    std::vector<Segment> out;
    std::vector<Item> pending; // comments, for the next statement's segment
    for (const Item &item : items) {
      if (!item.stmt) {
        pending.push_back(item);
        continue;
      }
      Segment::Kind kind = outlinedLoop(*item.stmt) ? Segment::Parallel : Segment::Run;
      if (kind == Segment::Parallel || out.empty() || out.back().kind != Segment::Run)
        out.push_back(Segment{kind, {}});
      out.back().items.insert(out.back().items.end(), pending.begin(), pending.end());
      out.back().items.push_back(item);
      pending.clear();
    }
    if (!pending.empty())
      out.push_back(Segment{Segment::Comments, pending});
    return out;
  }

  /// The f32 locals statement `s` reads or sets, but those of the lanes
  /// loops the JIT vectorizes (each declares its own).
  void localsTouched(const Stmt &s, std::set<int> &out) {
    if (s.kind == StmtKind::For && s.lanes && rules_.supported(s))
      return;
    if (s.kind == StmtKind::Local || s.kind == StmtKind::Assign)
      out.insert(s.var);
    for (const ExprRef &x : {s.extent, s.index, s.value, s.cost})
      if (x)
        localsRead(*x, out);
    for (const Stmt &b : s.body)
      localsTouched(b, out);
  }
  static void localsRead(const Expr &e, std::set<int> &out) {
    if (e.kind == ExprKind::Var && e.type == Type::F32)
      out.insert(e.var);
    for (const ExprRef &x : {e.a, e.b, e.c, e.d})
      if (x)
        localsRead(*x, out);
  }

  std::string kernelName(const std::string &group) {
    std::string tag = layersOf(group);
    return symbol_ + "_k" + std::to_string(++kernelCount_) + (tag.empty() ? "" : "_" + tag);
  }

  std::string mainFunction() {
    Fn main;
    main.raw = true;
    main.scopes.emplace_back();
    fn_ = &main;
    std::vector<const Stmt *> groups;
    if (f_.body.kind == StmtKind::Block)
      for (const Stmt &g : f_.body.body)
        groups.push_back(&g);
    else
      groups.push_back(&f_.body);
    // Locals two runs touch live in the main function (the JIT's slots are
    // the function's), passed to each run by reference.
    std::map<int, int> runsTouching;
    for (const Stmt *g : groups)
      for (const Segment &seg : segments(*g)) {
        if (seg.kind != Segment::Run)
          continue;
        std::set<int> touched;
        for (const Item &item : seg.items)
          if (item.stmt)
            localsTouched(*item.stmt, touched);
        for (int v : touched)
          ++runsTouching[v];
      }
    std::set<int> shared;
    for (const auto &[v, runs] : runsTouching)
      if (runs > 1)
        shared.insert(v);
    for (int v : shared)
      line("float " + varName('s', v) + " = 0.0f;");
    for (const Stmt *g : groups) {
      std::string what = g->comment;
      comment(what);
      for (const Segment &seg : segments(*g)) {
        switch (seg.kind) {
        case Segment::Comments:
          for (const Item &item : seg.items)
            comment(item.comment);
          break;
        case Segment::Parallel: {
          const Stmt &loop = *seg.items.back().stmt;
          for (const Item &item : seg.items)
            if (!item.stmt)
              comment(item.comment);
          std::string name = kernelName(what);
          Fn k = kernel(name, (what.empty() ? "" : what + ": ") + "iterations [begin, end) of " +
                                  varName('i', loop.var),
                        {}, true, [&] { counted(loop, "begin", "end"); });
          if (options_.serial) { // the whole range at once: one thread's split
            std::vector<std::string> args = arguments(k, "buffers", "N");
            args.push_back("0");
            args.push_back(expr(*loop.extent).text);
            main.usesN = main.usesN || k.usesN;
            fn_->out += callText(name, args, fn_->indent);
            break;
          }
          std::vector<std::string> args = arguments(k, "c.buffers", "c.N");
          args.push_back("begin");
          args.push_back("end");
          kernels_ += "void " + name + "_task(void *context, int64_t begin, int64_t end) {\n";
          if (k.used.empty() && !k.usesN)
            kernels_ += "  (void)context;\n";
          else
            kernels_ += "  const Context &c = *static_cast<const Context *>(context);\n";
          kernels_ += callText(name, args, 1) + "}\n";
          std::string extent = expr(*loop.extent).text;
          std::string cost = loop.cost ? expr(*loop.cost).text : "1";
          line("nnc_parallel_for(" + name + "_task, &context, " + extent + ", " + cost + ");");
          parallelCalls_ = true;
          break;
        }
        case Segment::Run: {
          std::string name = kernelName(what);
          std::set<int> refs;
          for (const Item &item : seg.items)
            if (item.stmt)
              localsTouched(*item.stmt, refs);
          std::set<int> mine;
          for (int v : refs)
            if (shared.count(v))
              mine.insert(v);
          Fn k = kernel(name, what, mine, false, [&] {
            for (const Item &item : seg.items)
              if (item.stmt)
                stmt(*item.stmt, false);
              else
                comment(item.comment);
          });
          main.usesN = main.usesN || k.usesN;
          fn_->out += callText(name, arguments(k, "buffers", "N"), fn_->indent);
          break;
        }
        }
      }
    }
    fn_ = nullptr;
    std::string head = (options_.serial ? "static" : "extern \"C\"") + std::string(" void ") +
                       symbol_ + "(float **buffers, int64_t N) {\n";
    if (parallelCalls_)
      head += "  Context context{buffers, N};\n";
    else {
      if (main.out.find("buffers[") == std::string::npos)
        head += "  (void)buffers;\n";
      if (!main.usesN)
        head += "  (void)N;\n";
    }
    return head + main.out + "}\n";
  }

  const Function &f_;
  std::string symbol_;
  CppOptions options_;
  LaneRules rules_;
  std::vector<std::string> names_; ///< the buffers' identifiers
  std::set<int> read_;             ///< variables read anywhere
  std::map<int, float> constants_; ///< locals set once to a constant
  Fn *fn_ = nullptr;
  std::string kernels_; ///< the outlined bodies
  std::set<std::string> helpers_;
  std::set<int> missing_; ///< variables read outside the scope that declares them
  int kernelCount_ = 0; ///< kernels written so far
  bool parallelCalls_ = false, random_ = false, sqrt_ = false;
};

} // namespace

std::string emitCpp(const loops::Function &f, const std::string &symbol,
                    const CppOptions &options) {
  bool ok = !symbol.empty() && !std::isdigit(static_cast<unsigned char>(symbol[0]));
  for (char ch : symbol)
    ok = ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_');
  if (!ok)
    throw std::logic_error("internal error: emitCpp: '" + symbol + "' is not a C identifier");
  if (std::string problem = loops::verify(f); !problem.empty())
    throw std::logic_error("internal error: invalid loop IR in " + f.name + ": " + problem);
  return Emitter(f, symbol, options).run();
}

} // namespace nnc
