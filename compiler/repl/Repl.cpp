// Repl.cpp — `nnc repl`: see Repl.h.
#include "repl/Repl.h"

#include "codegen/JIT.h"
#include "codegen/Runner.h"
#include "driver/EmitProgram.h"
#include "driver/Pipeline.h"
#include "frontend/ModelSema.h"
#include "graph/Build.h"
#include "loops/Lower.h"
#include "driver/Session.h"
#include "driver/Summary.h"
#include "driver/Train.h"
#include "frontend/Parse.h"
#include "frontend/Sema.h"
#include "ops/OpTable.h"
#include "support/Diag.h"
#include "support/Files.h"

#include <editline/readline.h>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <functional>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <poll.h>
#include <unistd.h>
#include <vector>

namespace nnc {

namespace {

using Clock = std::chrono::steady_clock;

// ------------------------------------------------------------ reading ----

/// Words the terminal completes: commands, layer names, ops, keywords.
std::vector<std::string> gCompletions;

char *completionGenerator(const char *text, int state) {
  static size_t next;
  static std::string prefix;
  if (state == 0) {
    next = 0;
    prefix = text;
  }
  while (next < gCompletions.size()) {
    const std::string &w = gCompletions[next++];
    if (w.compare(0, prefix.size(), prefix) == 0)
      return strdup(w.c_str());
  }
  return nullptr;
}

char **complete(const char *text, int, int) {
  rl_attempted_completion_over = 1; // no file names
  return rl_completion_matches(text, completionGenerator);
}

std::atomic<bool> gStop{false};

/// libedit's reads of the terminal: a key, or, once Ctrl-C has been typed
/// (the handler set gStop; perhaps before the read began, while the terminal
/// was still in cooked mode), Enter, so that readline returns and the caller
/// drops the line. Polls, so that a Ctrl-C between the check and the read
/// is seen within 0.1 s.
int getKey(FILE *) {
  for (;;) {
    if (gStop.load())
      return '\n';
    pollfd in{STDIN_FILENO, POLLIN, 0};
    int ready = ::poll(&in, 1, 100);
    if (ready < 0 && errno == EINTR)
      continue;
    if (ready == 0)
      continue;
    unsigned char c;
    ssize_t n = ::read(STDIN_FILENO, &c, 1);
    if (n == 1)
      return c;
    if (n < 0 && errno == EINTR)
      continue;
    return EOF;
  }
}

/// Lines from a terminal (libedit: editing, history, completion) or a pipe.
class LineReader {
public:
  LineReader(bool terminal, std::istream &in) : terminal_(terminal), in_(in) {
    if (!terminal_)
      return;
    if (const char *home = std::getenv("HOME"))
      history_ = std::string(home) + "/.nnc_history";
    using_history();
    stifle_history(1000);
    if (!history_.empty())
      read_history(history_.c_str());
    rl_attempted_completion_function = complete;
    // Ctrl-C at the prompt: our handler, not libedit's, and a read that
    // returns so that the line can be dropped (see getKey).
    rl_catch_signals = 0;
    rl_getc_function = getKey;
    rl_basic_word_break_characters = const_cast<char *>(" \t\n(),=[]{}->@");
  }
  ~LineReader() {
    if (terminal_ && !history_.empty())
      write_history(history_.c_str());
  }
  LineReader(const LineReader &) = delete;
  LineReader &operator=(const LineReader &) = delete;

  enum class Got { Line, Interrupted, End };

  /// The next line; Interrupted when Ctrl-C was typed at the prompt (the
  /// line typed so far is dropped, as a shell does).
  Got read(const char *prompt, std::string &line);
  void remember(const std::string &entry) {
    if (terminal_ && !entry.empty())
      add_history(entry.c_str());
  }

private:
  bool terminal_;
  std::istream &in_; ///< the lines when not on a terminal
  std::string history_;
};

/// How many more `{` than `}` the text has, strings and comments aside.
int openBraces(const std::string &text) {
  int depth = 0;
  bool inString = false, inComment = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (inComment) {
      inComment = c != '\n';
    } else if (inString) {
      if (c == '\\')
        ++i;
      else if (c == '"' || c == '\n')
        inString = false;
    } else if (c == '#') {
      inComment = true;
    } else if (c == '"') {
      inString = true;
    } else if (c == '{') {
      ++depth;
    } else if (c == '}') {
      --depth;
    }
  }
  return depth;
}

std::string trim(const std::string &s) {
  size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

std::vector<std::string> words(const std::string &s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;)
    out.push_back(w);
  return out;
}

/// The byte offset in `file` of a location (columns count code points).
size_t offsetOf(const SourceFile &file, SourceLoc loc) {
  std::string_view line = file.line(loc.line);
  size_t at = static_cast<size_t>(line.data() - file.text().data());
  for (uint32_t col = 1; col < loc.column && at < file.text().size(); ++col) {
    ++at;
    while (at < file.text().size() && (static_cast<unsigned char>(file.text()[at]) & 0xC0) == 0x80)
      ++at;
  }
  return at;
}

/// The offset just past the bracket that closes the one at `open`.
size_t closing(const std::string &text, size_t open) {
  if (open >= text.size())
    return text.size();
  const char o = text[open], c = o == '(' ? ')' : '}';
  int depth = 0;
  bool inString = false;
  for (size_t i = open; i < text.size(); ++i) {
    char ch = text[i];
    if (inString) {
      if (ch == '\\')
        ++i;
      else if (ch == '"')
        inString = false;
    } else if (ch == '#') {
      while (i < text.size() && text[i] != '\n')
        ++i;
    } else if (ch == '"') {
      inString = true;
    } else if (ch == o) {
      ++depth;
    } else if (ch == c && --depth == 0) {
      return i + 1;
    }
  }
  return text.size();
}

std::string percent(double v) { return std::isnan(v) ? "-" : fmt::format("{:.2f}%", 100 * v); }

// --------------------------------------------------------------- Ctrl-C ----

extern "C" void onInterrupt(int) { gStop.store(true); }

/// SIGINT sets gStop while it lives (a training stops at the next step).
class InterruptScope {
public:
  InterruptScope() {
    gStop.store(false);
    struct sigaction sa {};
    sa.sa_handler = onInterrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_);
    // A parent may have started nnc with SIGINT blocked (test drivers do).
    sigset_t interrupt;
    sigemptyset(&interrupt);
    sigaddset(&interrupt, SIGINT);
    pthread_sigmask(SIG_UNBLOCK, &interrupt, nullptr);
  }
  ~InterruptScope() { sigaction(SIGINT, &old_, nullptr); }
  InterruptScope(const InterruptScope &) = delete;
  InterruptScope &operator=(const InterruptScope &) = delete;

private:
  struct sigaction old_ {};
};

LineReader::Got LineReader::read(const char *prompt, std::string &line) {
  if (!terminal_)
    return std::getline(in_, line) ? Got::Line : Got::End;
  char *got;
  {
    InterruptScope interrupts; // Ctrl-C ends the read instead of nnc
    got = readline(prompt);
    if (gStop.load()) {
      std::free(got);
      std::cout << "^C\n";
      return Got::Interrupted;
    }
  }
  if (got == nullptr)
    return Got::End;
  line = got;
  std::free(got);
  return Got::Line;
}

// --------------------------------------------------------------- Repl ----

const char *const kHelp = R"(A session started without a file begins with `loss cross_entropy` and
`optimizer adam(lr=1e-3)`. Type a declaration to add or replace it — a model, a block, `loss …`, `optimizer …`,
`schedule …`, a `data` or `train` block — or `LAYER: op(…)` to replace one layer of the
model (`relu_1: gelu`). Blocks may span lines: input continues until the braces balance.
Any other input is a tensor expression, compiled and printed: `x = randn(2, 3)` keeps the result
as x; `softmax(x @ transpose(x))` uses it (ops as in models; each tensor acts as one example).
Commands:
  :load FILE                 start again from a .nn file
  :summary                   the model's layers, shapes and parameters, and the settings
  :train [N steps|N epochs]  train (default: one epoch); Ctrl-C stops at the next step
  :eval                      loss and accuracy on the test set
  :predict INDEX             test image INDEX as a picture, with the class probabilities
  :show NAME                 a parameter's (or a layer's parameters') shape and statistics
  :set lr X                  the base learning rate (the schedule scales it)
  :save PATH                 a checkpoint, as --train --save writes it
  :emit loops|llvm           the compiled training step and prediction
  :emit cpp DIR              the program as a standalone C++ trainer (as --emit-cpp DIR)
  :time                      compile and step times
  :help                      this
  :quit                      leave (so does the end of the input, Ctrl-D)
)";

/// What a session started without a file begins with.
const char *const kDefaults = "loss cross_entropy\noptimizer adam(lr=1e-3)\n";

const std::vector<std::string> kCommands = {":load", ":summary", ":train", ":eval", ":predict",
                                            ":show", ":set", ":save", ":emit", ":time",
                                            ":help", ":quit"};

class Repl {
public:
  explicit Repl(const ReplOptions &options)
      : options_(options), terminal_(!options.input && ::isatty(STDIN_FILENO) != 0) {}

  int run() {
    LineReader reader(terminal_, options_.input ? *options_.input : std::cin);
    if (!options_.file.empty())
      load(options_.file);
    else // a session from scratch: a model and data are all it needs
      chunks_ = {sources_.add("<defaults>", kDefaults)};
    refreshCompletions();
    std::string pending;
    int firstLine = 0;
    for (std::string line;;) {
      const char *prompt = !terminal_ ? "" : pending.empty() ? "nnc> " : "...> ";
      LineReader::Got got = reader.read(prompt, line);
      if (got == LineReader::Got::End)
        break;
      if (got == LineReader::Got::Interrupted) {
        pending.clear();
        continue;
      }
      ++lines_;
      if (pending.empty() && trim(line).empty())
        continue;
      if (pending.empty() && trim(line)[0] == ':') {
        reader.remember(trim(line));
        if (!command(trim(line)))
          break;
        std::cout << std::flush;
        continue;
      }
      if (pending.empty())
        firstLine = lines_;
      pending += line + "\n";
      if (openBraces(pending) > 0)
        continue;
      reader.remember(trim(pending));
      input(pending, firstLine);
      pending.clear();
      refreshCompletions();
      std::cout << std::flush;
    }
    if (!trim(pending).empty())
      input(pending, firstLine); // the input ended inside a block: say what is missing
    return 0;
  }

private:
  // ---- the program ----

  /// Parses every source in order, later declarations replacing earlier
  /// ones of the same kind, and checks the result.
  std::optional<Program> assemble(const std::vector<uint32_t> &chunks, Diag &diag) {
    Module merged;
    for (uint32_t file : chunks) {
      Module m = parseModule(sources_, file, diag);
      if (diag.hasErrors())
        return std::nullopt;
      // The program's file (its name in the summary; relative data paths
      // start from its directory): the loaded file, else where the model
      // was typed.
      if (merged.file == 0 || file == loadedFile_ || (!m.models.empty() && loadedFile_ == 0))
        merged.file = file;
      if (!m.models.empty())
        merged.models.clear();
      for (ModelDecl &d : m.models)
        merged.models.push_back(std::move(d));
      for (BlockDecl &d : m.blocks) {
        std::erase_if(merged.blocks, [&](const BlockDecl &b) { return b.name.name == d.name.name; });
        merged.blocks.push_back(std::move(d));
      }
      for (ConfigDecl &d : m.configs) {
        std::erase_if(merged.configs,
                      [&](const ConfigDecl &c) { return c.keyword.name == d.keyword.name; });
        merged.configs.push_back(std::move(d));
      }
      for (SettingDecl &d : m.settings) {
        std::erase_if(merged.settings,
                      [&](const SettingDecl &s) { return s.keyword.name == d.keyword.name; });
        merged.settings.push_back(std::move(d));
      }
    }
    if (merged.models.empty()) {
      pendingNoModel_ = true;
      return std::nullopt;
    }
    pendingNoModel_ = false;
    return analyze(merged, sources_, diag);
  }

  Diag newDiag() { return Diag(sources_, std::cerr, options_.color); }

  void load(const std::string &path) {
    Diag diag = newDiag();
    std::string error;
    std::optional<std::string> text = readSourceFile(path, error);
    if (!text) {
      diag.errorNoLoc(error);
      return;
    }
    uint32_t file = sources_.add(path, std::move(*text));
    std::optional<Program> program;
    try {
      loadedFile_ = file;
      program = assemble({file}, diag);
    } catch (const DiagLimitReached &) {
    }
    if (!program) {
      loadedFile_ = chunks_.empty() ? 0 : chunks_.front();
      std::cerr << "nothing was loaded\n";
      return;
    }
    chunks_ = {file};
    program_ = std::move(program);
    compiled_.reset(); // a new program: fresh weights, the step count from 0
    saved_.clear();
    progress_ = {};
    lr_.reset();
    std::cout << "loaded " << path << "\n";
    printSummary(*program_, std::cout);
  }

  /// A declaration or a layer's replacement typed at session line `firstLine`.
  void input(const std::string &text, int firstLine) {
    std::string t = trim(text);
    static const std::set<std::string> declarations = {"model", "block",    "data",    "train",
                                                       "loss",  "optimizer", "schedule"};
    std::string head = t.substr(0, t.find_first_of(" \t\n({:"));
    // The source keeps the session's line numbers, so diagnostics point at
    // the line typed.
    std::string padded = std::string(static_cast<size_t>(firstLine - 1), '\n') + text;
    if (declarations.count(head)) {
      change({sources_.add("<input>", padded)}, "");
      return;
    }
    size_t colon = t.find(':');
    if (colon != std::string::npos && isIdentifierText(trim(t.substr(0, colon)))) {
      replaceLayer(text, firstLine);
      return;
    }
    evaluate(text, firstLine);
  }

  // ---- tensor expressions ----

  /// `NAME = EXPR` or `EXPR`: the expression compiled as a model whose
  /// inputs are the session's tensors it names, run by the JIT, printed;
  /// an assignment keeps the result as NAME.
  void evaluate(const std::string &text, int firstLine) {
    std::string t = trim(text), name;
    size_t eq = t.find('=');
    if (eq != std::string::npos && eq + 1 < t.size() && t[eq + 1] != '=' &&
        isIdentifierText(trim(t.substr(0, eq))) && trim(t.substr(0, eq)).find('.') == std::string::npos) {
      name = trim(t.substr(0, eq));
      // Keep the expression where it was typed: blank out `NAME =`.
      size_t at = text.find('=');
      std::string blanked = text;
      for (size_t i = 0; i <= at; ++i)
        if (blanked[i] != '\n')
          blanked[i] = ' ';
      return evaluate(blanked, firstLine, name);
    }
    evaluate(text, firstLine, "");
  }

  void evaluate(const std::string &text, int firstLine, const std::string &name) {
    // The session's tensors the expression may name, as the model's inputs
    // (a batch of one: each op acts on it as on one example).
    std::string inputs;
    for (const auto &[var, tensor] : tensors_)
      if (mentions(text, var)) {
        std::string dims;
        for (int64_t d : tensor.dims)
          dims += (dims.empty() ? "" : ", ") + std::to_string(d);
        inputs += (inputs.empty() ? "" : ", ") + var + ": [" + dims + "]";
      }
    bool dummy = inputs.empty();
    if (dummy)
      inputs = "__none: [1]";
    std::string source = std::string(static_cast<size_t>(std::max(firstLine - 2, 0)), '\n') +
                         "model __expression(" + inputs + ") { return" +
                         (firstLine >= 2 ? "\n" : " ") + text + "\n}\n";
    uint32_t file = sources_.add("<input>", source);
    std::ostringstream messages;
    Diag diag(sources_, messages, options_.color);
    std::optional<Model> model;
    try {
      Module m = parseModule(sources_, file, diag);
      if (!diag.hasErrors() && m.models.size() == 1) {
        BlockTable blocks;
        std::set<std::string> used;
        model = analyzeModel(m.models[0], blocks, used, diag);
      }
    } catch (const DiagLimitReached &) {
    }
    if (!model || diag.hasErrors()) {
      std::cerr << messages.str(); // errors in the line typed (and no warnings of the wrapper)
      return;
    }
    Program program;
    program.path = "<input>";
    program.model = std::move(*model);
    Graph graph = buildGraph(program);
    std::string why;
    if (!loops::canLower(graph, false, why)) {
      std::cerr << "cannot compile the expression: " << why << " is not supported yet\n";
      return;
    }
    loops::LowerOptions o;
    o.name = "expression";
    o.capacity = 1;
    o.seed = ++expressionSeed_; // every evaluation draws new random numbers
    o.vectorLanes = vectorLanes();
    loops::Function f = loops::lower(graph, {}, o);
    if (options_.fuzzing) {
      std::cout << "(fuzzing: the expression is lowered, not run)\n";
      return;
    }
    std::string error;
    if (!code_.jit) {
      std::unique_ptr<JIT> jit = JIT::create(error);
      if (!jit) {
        std::cerr << "error: cannot start the JIT: " << error << "\n";
        return;
      }
      code_.jit = std::move(jit);
    }
    // The expression's code leaves the JIT when `compiled` goes.
    CompiledCode compiled = code_.jit->compileTracked({&f}, error);
    if (compiled.functions.size() != 1) {
      std::cerr << "error: cannot compile the expression: " << error << "\n";
      return;
    }
    Runner r(f, compiled.functions[0]);
    for (const auto &[var, tensor] : tensors_)
      if (float *in = r.data(var))
        std::copy(tensor.values.begin(), tensor.values.end(), in);
    r.run(1);
    const Value &out = graph.value(graph.outputs[0]);
    Tensor result;
    for (size_t i = 0; i < out.shape.dims.size(); ++i)
      if (!(i == 0 && out.shape.isBatched()))
        result.dims.push_back(out.shape.dims[i]);
    int64_t count = 1;
    for (int64_t d : result.dims)
      count *= d;
    const float *values = r.data(out.name);
    result.values.assign(values, values + count);
    std::cout << (name.empty() ? "" : name + " = ") << format(result) << "\n";
    if (!name.empty())
      tensors_[name] = std::move(result);
  }

  /// Whether `text` has `word` as a whole identifier.
  static bool mentions(const std::string &text, const std::string &word) {
    for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) {
      auto ident = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
      bool before = at > 0 && ident(text[at - 1]);
      bool after = at + word.size() < text.size() && ident(text[at + word.size()]);
      if (!before && !after)
        return true;
    }
    return false;
  }

  struct Tensor {
    std::vector<int64_t> dims;
    std::vector<float> values;
  };

  /// `tensor [2, 3]` and the values, nested as PyTorch prints them (at most
  /// 6 a row and 6 rows a matrix, the rest elided).
  static std::string format(const Tensor &t) {
    std::string shape;
    for (int64_t d : t.dims)
      shape += (shape.empty() ? "" : ", ") + std::to_string(d);
    std::string out = "tensor [" + shape + "]";
    if (t.dims.empty())
      return out + ": " + fmt::format("{:.6g}", t.values[0]);
    out += "\n";
    std::function<void(size_t, size_t, int)> nest = [&](size_t axis, size_t offset, int indent) {
      int64_t n = t.dims[axis];
      size_t stride = 1;
      for (size_t a = axis + 1; a < t.dims.size(); ++a)
        stride *= static_cast<size_t>(t.dims[a]);
      out += "[";
      for (int64_t i = 0; i < n; ++i) {
        if (n > 6 && i == 3) {
          out += axis + 1 == t.dims.size() ? "..., " : "...,\n" + std::string(static_cast<size_t>(indent + 1), ' ');
          i = n - 3;
        }
        if (axis + 1 == t.dims.size())
          out += fmt::format("{:9.4f}", t.values[offset + static_cast<size_t>(i)]);
        else
          nest(axis + 1, offset + static_cast<size_t>(i) * stride, indent + 1);
        if (i + 1 < n)
          out += axis + 1 == t.dims.size() ? ", " : ",\n" + std::string(static_cast<size_t>(indent + 1), ' ');
      }
      out += "]";
    };
    nest(0, 0, 0);
    return out;
  }

  static bool isIdentifierText(const std::string &s) {
    if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0])))
      return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
    });
  }

  /// Adds the sources `added` (replacing the model's source `replaced`
  /// layers from when not empty) if the program still checks.
  /// `done` is said when it worked; `context` before an error's "unchanged".
  void change(std::vector<uint32_t> added, const std::string &replacedLayer,
              const std::string &done = "", const std::string &context = "") {
    Diag diag = newDiag();
    std::vector<uint32_t> chunks = chunks_;
    chunks.insert(chunks.end(), added.begin(), added.end());
    std::optional<Program> program;
    try {
      program = assemble(chunks, diag);
    } catch (const DiagLimitReached &) {
    }
    if (!program) {
      if (pendingNoModel_ && !diag.hasErrors()) {
        chunks_ = chunks; // settings before any model: kept for when one comes
        std::cout << "noted; no model yet: type one (model NAME(x: [...]) { ... }) or :load FILE\n";
      } else {
        std::cerr << (context.empty() ? "" : "(" + context + ") ") << "the program is unchanged\n";
      }
      return;
    }
    if (!done.empty())
      std::cout << done << "\n";
    chunks_ = std::move(chunks);
    if (!replacedLayer.empty())
      replaced_.insert(replacedLayer);
    if (program_)
      keepWeights();
    program_ = std::move(program);
    printSummary(*program_, std::cout);
  }

  /// `LAYER: stage` typed: the model's source with that layer's stage
  /// replaced, as a new source.
  void replaceLayer(const std::string &text, int firstLine) {
    Diag diag = newDiag();
    // Check the typed stage on its own first (inside a model written around
    // it on the lines before), so that a mistake is shown in the line typed.
    std::string wrapped = std::string(static_cast<size_t>(std::max(firstLine - 2, 0)), '\n') +
                          "model __input(x: [1]) { x ->" + (firstLine >= 2 ? "\n" : " ") + text +
                          "\n}\n";
    uint32_t typed = sources_.add("<input>", wrapped);
    Module m;
    try {
      m = parseModule(sources_, typed, diag);
    } catch (const DiagLimitReached &) {
    }
    if (diag.hasErrors()) {
      std::cerr << "the program is unchanged\n";
      return;
    }
    const Expr *chain = m.models.size() == 1 && m.models[0].body.size() == 1
                            ? m.models[0].body[0].value.get()
                            : nullptr;
    if (chain == nullptr || chain->kind != ExprKind::Chain || chain->stages.empty() ||
        !chain->stages[0].label) {
      diag.errorNoLoc("write a layer's replacement as `LAYER: op(…)` (e.g. `relu_1: gelu`)");
      return;
    }
    const Stage &first = chain->stages[0];
    const std::string name = first.label->name;
    if (!program_) {
      diag.error(first.label->loc, "there is no model yet to replace a layer of",
                 "type a model or :load FILE first");
      return;
    }
    const Layer *layer = nullptr;
    for (const Layer &l : program_->model.layers)
      if (l.name == name)
        layer = &l;
    if (layer == nullptr) {
      std::string names;
      for (const Layer &l : program_->model.layers)
        names += (names.empty() ? "" : ", ") + l.name;
      diag.error(first.label->loc,
                 "model '" + program_->model.name + "' has no layer '" + name + "'",
                 "its layers: " + names);
      return;
    }
    // The stage as written in the model: its layer's location.
    const SourceFile &file = sources_.file(layer->loc.file);
    parseModel();
    const Stage *stage = stageAt(layer->loc);
    if (stage == nullptr) {
      diag.error(first.label->loc,
                 "layer '" + name + "' comes from a block; change the block instead",
                 "redefine the block (block NAME(…)(…) { … }) to change every use of it");
      return;
    }
    size_t from = offsetOf(file, stage->label ? stage->label->loc : stage->callee.loc);
    size_t to = offsetOf(file, stage->callee.loc) + stage->callee.name.size();
    if (stage->hasParens) {
      size_t open = file.text().find('(', to);
      to = closing(file.text(), open);
    }
    // The replacement: what was typed after the label, under the old label
    // if the layer had one (else it takes an automatic name of its own).
    const SourceFile &typedFile = sources_.file(typed);
    std::string after = trim(typedFile.text().substr(offsetOf(typedFile, first.callee.loc)));
    after = trim(after.substr(0, after.rfind('}')));
    std::string replacement = (stage->label ? stage->label->name + ": " : "") + after;
    // The edits: the stage replaced, and every other layer of the model
    // labeled with the name it has now, so that no name moves (replacing
    // relu_1 must not make relu_2 the new relu_1).
    std::vector<std::pair<std::pair<size_t, size_t>, std::string>> edits = {
        {{from, to}, replacement}};
    for (const Layer &l : program_->model.layers) {
      const Stage *s = &l == layer ? nullptr : stageAt(l.loc);
      if (s != nullptr && !s->label) {
        size_t at = offsetOf(file, s->callee.loc);
        edits.push_back({{at, at}, l.name + ": "});
      }
    }
    std::sort(edits.begin(), edits.end(),
              [](const auto &a, const auto &b) { return a.first.first > b.first.first; });
    // The new source: the model alone, on the lines it was written on (the
    // file's other declarations stay in their source).
    const ModelDecl *decl = modelDecl(layer->loc);
    size_t modelFrom = offsetOf(file, decl->loc);
    size_t modelTo = closing(file.text(), file.text().find('{', offsetOf(file, decl->loc)));
    std::string edited = file.text().substr(0, modelTo);
    for (const auto &[range, text] : edits)
      edited.replace(range.first, range.second - range.first, text);
    for (size_t i = 0; i < modelFrom; ++i)
      if (edited[i] != '\n')
        edited[i] = ' ';
    change({sources_.add(file.path(), edited)}, name,
           "replaced " + name + " (" + layer->op->name + ") with " + replacement,
           fmt::format("in the model with {} replaced as typed on line {}", name, firstLine));
  }

  /// Parses the source of the current model again, for stageAt and modelDecl.
  void parseModel() {
    lastModule_ = std::make_unique<Module>();
    Diag quiet(sources_, nullSink_);
    for (uint32_t file : chunks_) {
      Module m = parseModule(sources_, file, quiet);
      if (!m.models.empty())
        *lastModule_ = std::move(m);
    }
  }
  /// The stage of the current model written at `loc`, if in the model (not
  /// in a block).
  const Stage *stageAt(SourceLoc loc) {
    for (const ModelDecl &d : lastModule_->models)
      for (const Stmt &s : d.body)
        if (const Stage *found = findStage(s.value.get(), loc))
          return found;
    return nullptr;
  }
  static const Stage *findStage(const Expr *e, SourceLoc loc) {
    if (e == nullptr)
      return nullptr;
    auto at = [&](SourceLoc l) {
      return l.file == loc.file && l.line == loc.line && l.column == loc.column;
    };
    for (const Stage &s : e->stages) {
      if (at(s.loc) || at(s.callee.loc) || (s.label && at(s.label->loc)))
        return &s;
      for (const Arg &a : s.args)
        if (const Stage *found = findStage(a.value.get(), loc))
          return found;
    }
    for (const ExprPtr &o : e->operands)
      if (const Stage *found = findStage(o.get(), loc))
        return found;
    for (const Arg &a : e->args)
      if (const Stage *found = findStage(a.value.get(), loc))
        return found;
    return nullptr;
  }
  /// The model declaration (of the last parseModel) containing `loc`.
  const ModelDecl *modelDecl(SourceLoc loc) {
    for (const ModelDecl &d : lastModule_->models)
      if (d.loc.file == loc.file)
        return &d;
    return nullptr;
  }

  // ---- compiling and running ----

  /// The weights and optimizer state of the current session, kept for the
  /// next one where their layers did not change.
  void keepWeights() {
    if (!compiled_)
      return;
    nnc_rt::Session &state = compiled_->state();
    for (const nnc_rt::StateTensor &t : state.model().state) {
      const float *p = state.trainStep().data(t.name);
      saved_[t.name] = {layerSignature(*program_, t.name), std::vector<float>(p, p + t.elements)};
    }
    savedOptimizer_ = program_->optimizer.name;
    compiled_.reset();
  }

  /// What a state tensor's layer is (op, attributes, parameter shapes),
  /// "" for a tensor of no layer.
  static std::string layerSignature(const Program &p, const std::string &tensor) {
    for (const Layer &l : p.model.layers)
      for (const ParamInfo &param : l.params)
        if (tensor == param.name || tensor.rfind(param.name + ".", 0) == 0) {
          std::string sig = l.op->name + "(" + l.attrs.str() + ")";
          for (const ParamInfo &q : l.params) {
            sig += " " + q.name;
            for (int64_t d : q.shape)
              sig += ":" + std::to_string(d);
          }
          return sig;
        }
    return "";
  }

  /// Compiles the program if it changed since the last time; false after
  /// reporting why it cannot be.
  bool compiled() {
    if (compiled_)
      return true;
    if (options_.fuzzing) {
      std::cerr << "(fuzzing: nothing is compiled)\n";
      return false;
    }
    if (!program_) {
      std::cerr << "there is no model yet: type one or :load FILE\n";
      return false;
    }
    Diag diag = newDiag();
    std::string error;
    bool overCap = false;
    compiled_ = Session::create(*program_, program_->data.batch, error, &code_, false, &overCap);
    if (!compiled_) {
      diag.error(program_->model.loc, error,
                 overCap ? nnc_rt::buffersOverCapHint("`batch` in a data block") : "");
      return false;
    }
    compiles_.push_back(compiled_->report());
    // Carry over what did not change.
    nnc_rt::Session &state = compiled_->state();
    int kept = 0, fresh = 0;
    const bool carrying = !saved_.empty();
    for (const nnc_rt::StateTensor &t : state.model().state) {
      auto old = saved_.find(t.name);
      bool same = old != saved_.end() && static_cast<int64_t>(old->second.values.size()) == t.elements &&
                  old->second.signature == layerSignature(*program_, t.name) &&
                  (t.kind != nnc_rt::StateTensor::Kind::Optimizer ||
                   savedOptimizer_ == program_->optimizer.name);
      for (const std::string &r : replaced_)
        if (t.name.rfind(r + ".", 0) == 0)
          same = false;
      if (same) {
        std::copy(old->second.values.begin(), old->second.values.end(),
                  state.trainStep().data(t.name));
        ++kept;
      } else if (t.kind != nnc_rt::StateTensor::Kind::Optimizer) {
        ++fresh;
      }
    }
    state.syncPredict();
    replaced_.clear();
    saved_.clear();
    std::cout << fmt::format("compiled {} in {:.0f} ms", program_->model.name,
                             compiles_.back().totalMs);
    if (!compiled_->report().reused.empty())
      std::cout << fmt::format(" ({} unchanged)", fmt::join(compiled_->report().reused, ", "));
    if (carrying)
      std::cout << fmt::format("; kept {} tensors of the last session, {} start afresh", kept,
                               fresh);
    std::cout << "\n";
    return true;
  }

  /// The data, read again only when where or how it is read changed.
  nnc_rt::Stepper *stepper() {
    const nnc_rt::Model &m = compiled_->state().model();
    const nnc_rt::DataOptions &d = m.data;
    const nnc_rt::Augmentation &a = d.augment;
    std::string dir = dataDirectory(*program_, options_.dataDir);
    std::string key = fmt::format("{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}", dir, d.batchSize,
                                  d.shuffle, d.normalizeMean, d.normalizeStd,
                                  d.validationFraction, a.cropSize, a.cropPadding, a.shiftPixels,
                                  a.rotateDegrees, a.flipProbability, d.seed, m.inputDims.size());
    if (stepper_ && key == stepperKey_)
      return stepper_.get();
    stepper_.reset();
    Diag diag = newDiag();
    nnc_rt::RunOptions run;
    run.dataDir = dir;
    run.dataFromOption = !options_.dataDir.empty();
    stepper_ = nnc_rt::Stepper::open(m, run, reporter(*program_, diag));
    if (!stepper_)
      return nullptr;
    stepperKey_ = key;
    std::cout << fmt::format("read {} training and {} test images from {}\n",
                             nnc_rt::withThousands(stepper_->trainExamples()),
                             nnc_rt::withThousands(stepper_->testExamples()), dir);
    return stepper_.get();
  }

  // ---- commands ----

  /// Runs a command; false to end the session.
  bool command(const std::string &line) {
    std::vector<std::string> w = words(line);
    const std::string &name = w[0];
    std::vector<std::string> args(w.begin() + 1, w.end());
    if (name == ":quit" || name == ":q")
      return false;
    if (name == ":help")
      std::cout << kHelp;
    else if (name == ":load" && args.size() == 1 && options_.fuzzing)
      std::cerr << "(fuzzing: no file is read)\n";
    else if (name == ":load" && args.size() == 1)
      load(args[0]);
    else if (name == ":summary" && args.empty())
      summary();
    else if (name == ":train")
      train(args);
    else if (name == ":eval" && args.empty())
      eval();
    else if (name == ":predict" && args.size() == 1)
      predict(args[0]);
    else if (name == ":show" && args.size() == 1)
      show(args[0]);
    else if (name == ":set" && args.size() == 2 && args[0] == "lr")
      setLr(args[1]);
    else if (name == ":save" && args.size() == 1)
      save(args[0]);
    else if (name == ":emit" && !args.empty())
      emit(args);
    else if (name == ":time" && args.empty())
      time();
    else
      usage(name);
    return true;
  }

  void usage(const std::string &name) {
    if (std::find(kCommands.begin(), kCommands.end(), name) != kCommands.end()) {
      std::istringstream help(kHelp);
      for (std::string l; std::getline(help, l);)
        if (trim(l).rfind(name + " ", 0) == 0 || trim(l) == name)
          std::cerr << "usage: " << trim(l.substr(0, l.find("  ", 4))) << "\n";
      return;
    }
    std::string near;
    for (const std::string &c : kCommands)
      if (name.size() > 1 && c.compare(0, name.size(), name) == 0)
        near += (near.empty() ? "" : " or ") + c;
    std::cerr << "unknown command '" << name << "'"
              << (near.empty() ? "; :help lists the commands" : "; did you mean " + near + "?")
              << "\n";
  }

  void summary() {
    if (!program_) {
      std::cerr << "there is no model yet: type one or :load FILE\n";
      return;
    }
    printSummary(*program_, std::cout);
  }

  void train(const std::vector<std::string> &args) {
    int64_t count = 1;
    bool epochs = true;
    if (!args.empty()) {
      char *end = nullptr;
      count = std::strtoll(args[0].c_str(), &end, 10);
      bool unit = args.size() == 2 && (args[1] == "steps" || args[1] == "step" ||
                                       args[1] == "epochs" || args[1] == "epoch");
      if (*end != '\0' || count <= 0 || count > 1'000'000'000 || !unit) {
        std::cerr << "usage: :train [N steps|N epochs] (e.g. :train 100 steps)\n";
        return;
      }
      epochs = args[1][0] == 'e';
    }
    if (!compiled())
      return;
    nnc_rt::Stepper *data = stepper();
    if (data == nullptr)
      return;
    int64_t steps = epochs ? count * data->stepsPerEpoch() : count;
    Diag diag = newDiag();
    nnc_rt::StepsReport report;
    bool ok;
    {
      InterruptScope interrupts;
      ok = data->train(compiled_->state(), steps, lr_ ? *lr_ : program_->optimizer.attrs.getFloat("lr"),
                       progress_, &gStop, terminal_, report, reporter(*program_, diag));
    }
    if (report.steps > 0)
      stepMs_ = 1000 * report.seconds / static_cast<double>(report.steps);
    if (!ok)
      return;
    int64_t perEpoch = data->stepsPerEpoch();
    std::string where =
        progress_.step % perEpoch == 0
            ? fmt::format("the end of epoch {}", progress_.step / perEpoch)
            : fmt::format("step {} of {} in epoch {}", progress_.step % perEpoch, perEpoch,
                          progress_.step / perEpoch + 1);
    std::cout << fmt::format("{}{} steps: loss {:.4f}, accuracy {}, lr {:.3g}; now at step {} "
                             "({}); {:.2f} s\n",
                             report.steps < steps ? "stopped after " : "trained ",
                             nnc_rt::withThousands(report.steps), report.loss,
                             percent(report.accuracy), double(report.lr),
                             nnc_rt::withThousands(progress_.step), where, report.seconds);
  }

  void eval() {
    if (!compiled())
      return;
    nnc_rt::Stepper *data = stepper();
    if (data == nullptr)
      return;
    auto [loss, accuracy] = data->test(compiled_->state());
    std::cout << fmt::format("test: loss {:.4f}, accuracy {} ({} images)\n", loss,
                             percent(accuracy), nnc_rt::withThousands(data->testExamples()));
  }

  void predict(const std::string &arg) {
    char *end = nullptr;
    long long index = std::strtoll(arg.c_str(), &end, 10);
    if (*end != '\0' || arg.empty()) {
      std::cerr << "usage: :predict INDEX (a test image, from 0)\n";
      return;
    }
    if (!compiled())
      return;
    nnc_rt::Stepper *data = stepper();
    if (data == nullptr)
      return;
    if (index < 0 || index >= data->testExamples()) {
      std::cerr << fmt::format("there is no test image {}: the test set has {} (0 to {})\n", index,
                               nnc_rt::withThousands(data->testExamples()),
                               data->testExamples() - 1);
      return;
    }
    std::vector<uint8_t> pixels;
    int64_t label = 0, rows = 0, cols = 0;
    std::vector<double> p = data->classify(compiled_->state(), index, pixels, rows, cols, label);
    size_t best = static_cast<size_t>(std::max_element(p.begin(), p.end()) - p.begin());
    static const char kRamp[] = " .:-=+*#%@";
    std::vector<std::string> right;
    right.push_back(fmt::format("test image {}: label {}, predicted {}", index, label, best));
    for (size_t j = 0; j < p.size(); ++j)
      right.push_back(fmt::format("  {:>2}  {:6.2f}%  {}{}", j, 100 * p[j],
                                  std::string(static_cast<size_t>(std::lround(20 * p[j])), '#'),
                                  j == best ? " <" : ""));
    size_t n = std::max(static_cast<size_t>(rows), right.size());
    for (size_t r = 0; r < n; ++r) {
      std::string art;
      if (r < static_cast<size_t>(rows))
        for (int64_t c = 0; c < cols; ++c) {
          char ch = kRamp[pixels[r * static_cast<size_t>(cols) + static_cast<size_t>(c)] * 9 / 255];
          art += std::string(2, ch);
        }
      else
        art = std::string(static_cast<size_t>(2 * cols), ' ');
      std::string line = art + (r < right.size() ? "  " + right[r] : "");
      std::cout << line.substr(0, line.find_last_not_of(' ') + 1) << "\n";
    }
  }

  void show(const std::string &name) {
    if (!compiled())
      return;
    nnc_rt::Session &state = compiled_->state();
    std::vector<const nnc_rt::StateTensor *> shown;
    for (const nnc_rt::StateTensor &t : state.model().state)
      if (t.name == name || (t.kind != nnc_rt::StateTensor::Kind::Optimizer &&
                             t.name.rfind(name + ".", 0) == 0 &&
                             t.name.find('.', name.size() + 1) == std::string::npos))
        shown.push_back(&t);
    if (shown.empty()) {
      std::string names;
      for (const nnc_rt::StateTensor &t : state.model().state)
        if (t.kind != nnc_rt::StateTensor::Kind::Optimizer)
          names += (names.empty() ? "" : ", ") + t.name;
      std::cerr << "no parameter or layer '" << name << "'; the model's tensors: " << names << "\n";
      return;
    }
    for (const nnc_rt::StateTensor *t : shown) {
      const float *v = state.trainStep().data(t->name);
      double sum = 0, sq = 0, lo = v[0], hi = v[0];
      for (int64_t i = 0; i < t->elements; ++i) {
        sum += v[i];
        sq += double(v[i]) * v[i];
        lo = std::min(lo, double(v[i]));
        hi = std::max(hi, double(v[i]));
      }
      double n = static_cast<double>(t->elements), mean = sum / n;
      std::string shape;
      for (int64_t d : t->shape)
        shape += (shape.empty() ? "" : ", ") + std::to_string(d);
      std::cout << fmt::format("{} [{}]: {} numbers, mean {:.4g}, std {:.4g}, min {:.4g}, max "
                               "{:.4g}\n",
                               t->name, shape, nnc_rt::withThousands(t->elements), mean,
                               std::sqrt(std::max(0.0, sq / n - mean * mean)), lo, hi);
      if (t->elements <= 16) {
        std::string values;
        for (int64_t i = 0; i < t->elements; ++i)
          values += fmt::format("{}{:.4g}", i ? ", " : "", v[i]);
        std::cout << "  [" << values << "]\n";
      }
    }
  }

  void setLr(const std::string &value) {
    char *end = nullptr;
    double lr = std::strtod(value.c_str(), &end);
    if (*end != '\0' || !(lr > 0) || !std::isfinite(lr) || lr > 1e6) {
      std::cerr << "the learning rate must be a number above 0 (and at most 1e6), not '" << value
                << "'\n";
      return;
    }
    std::optional<double> was = lr_;
    if (!was && program_)
      was = program_->optimizer.attrs.getFloat("lr");
    lr_ = lr;
    std::cout << fmt::format("base learning rate {:g}", lr)
              << (was ? fmt::format(" (was {:g})", *was) : "") << "\n";
  }

  void save(const std::string &path) {
    if (!compiled())
      return;
    std::string error;
    if (!compiled_->state().save(path, progress_, error)) {
      std::cerr << "error: cannot save: " << error << "\n";
      return;
    }
    std::cout << "saved " << path << " and " << nnc_rt::optimizerStatePath(path) << " at step "
              << nnc_rt::withThousands(progress_.step) << "\n";
  }

  void emit(const std::vector<std::string> &args) {
    if (!program_) {
      std::cerr << "there is no model yet: type one or :load FILE\n";
      return;
    }
    Diag diag = newDiag();
    if (options_.fuzzing && args[0] != "loops")
      std::cerr << "(fuzzing: only :emit loops)\n";
    else if ((args[0] == "loops" || args[0] == "llvm") && args.size() == 1)
      printLowered(*program_, args[0], std::cout, diag);
    else if (args[0] == "cpp" && args.size() == 2)
      emitCppCommand(*program_, args[1], dataDirectory(*program_, options_.dataDir), diag);
    else
      std::cerr << "usage: :emit loops|llvm, or :emit cpp DIR\n";
  }

  void time() {
    if (compiles_.empty()) {
      std::cout << "nothing compiled yet\n";
      return;
    }
    for (size_t i = 0; i < compiles_.size(); ++i) {
      const CompileReport &r = compiles_[i];
      std::cout << fmt::format("compile {}: {:.1f} ms, {:.1f} ms of processor time (lowering "
                               "{:.1f} ms, JIT {:.1f} ms",
                               i + 1, r.totalMs, r.cpuMs, r.lowerMs, r.jitMs);
      if (!r.compiled.empty())
        std::cout << fmt::format(" for {}", fmt::join(r.compiled, " and "));
      if (!r.reused.empty())
        std::cout << fmt::format("; {} unchanged", fmt::join(r.reused, " and "));
      std::cout << ")\n";
    }
    if (stepMs_ > 0)
      std::cout << fmt::format("last :train: {:.3f} ms a step\n", stepMs_);
  }

  void refreshCompletions() {
    std::set<std::string> w(kCommands.begin(), kCommands.end());
    for (const char *k : {"model", "block", "data", "train", "loss", "optimizer", "schedule",
                          "steps", "epochs", "loops", "llvm", "cpp", "lr"})
      w.insert(k);
    for (const OpDef &op : allOps())
      if (op.kind != OpKind::Internal)
        w.insert(op.name);
    if (program_)
      for (const Layer &l : program_->model.layers) {
        w.insert(l.name);
        for (const ParamInfo &p : l.params)
          w.insert(p.name);
        for (const auto &[attr, value] : l.attrs.entries())
          w.insert(attr);
      }
    gCompletions.assign(w.begin(), w.end());
  }

  struct Saved {
    std::string signature;
    std::vector<float> values;
  };

  ReplOptions options_;
  bool terminal_;
  SourceManager sources_;
  std::ostringstream nullSink_;
  std::vector<uint32_t> chunks_; ///< the sources of the program, in order
  uint32_t loadedFile_ = 0;      ///< the file of :load (relative data paths start there)
  bool pendingNoModel_ = false;
  int lines_ = 0; ///< lines read
  std::optional<Program> program_;
  std::unique_ptr<Module> lastModule_;
  std::unique_ptr<Session> compiled_;
  std::map<std::string, Saved> saved_; ///< the last session's state, by tensor
  std::string savedOptimizer_;
  std::set<std::string> replaced_; ///< layers replaced since the last compile
  std::unique_ptr<nnc_rt::Stepper> stepper_;
  std::string stepperKey_;
  nnc_rt::Progress progress_;
  std::optional<double> lr_;
  std::vector<CompileReport> compiles_; ///< what each compile did, for :time
  CodeCache code_; ///< the JIT and the code of the last compile, for the next
  std::map<std::string, Tensor> tensors_; ///< the session's tensors, by name
  uint64_t expressionSeed_ = 0;
  double stepMs_ = 0;
};

} // namespace

int runRepl(const ReplOptions &options) {
  // Every piece of output at once, so that it interleaves with diagnostics
  // (stderr) in the order it was written.
  std::cout << std::unitbuf;
  Repl repl(options);
  return repl.run();
}

} // namespace nnc
