// Parse.cpp — runs the ANTLR-generated parser and turns its parse tree into
// the AST. This is the only file that includes ANTLR headers.
//
// Before ANTLR runs, the text is checked for what ANTLR handles badly: bytes
// that are not UTF-8 and nesting so deep that a recursive-descent parser
// would exhaust the stack. ANTLR's own error messages are replaced by ones
// written for people (`expected ')' but found 'dense'`).
#include "frontend/Parse.h"

#include "frontend/Prescan.h"

#include "NNLexer.h"
#include "NNParser.h"
#include "antlr4-runtime.h"
#include "support/Text.h"

#include <cctype>
#include <charconv>
#include <cmath>

namespace nnc {
namespace {

using antlr4::Token;

/// Code points in a UTF-8 string (the string is known to be valid UTF-8).
uint32_t codePoints(std::string_view s) {
  uint32_t n = 0;
  for (unsigned char c : s)
    n += (c & 0xC0) != 0x80;
  return n;
}

/// How a token type is named in "expected …" messages.
std::string describeTokenType(size_t type, const antlr4::dfa::Vocabulary &vocabulary) {
  switch (type) {
  case Token::EOF:
    return "end of file";
  case NNLexer::IDENT:
    return "a name";
  case NNLexer::INT:
    return "an integer";
  case NNLexer::FLOAT:
    return "a number";
  case NNLexer::STRING:
    return "a string";
  default:
    return vocabulary.getLiteralName(type);
  }
}

std::string describeToken(Token *token) {
  if (token == nullptr || token->getType() == Token::EOF)
    return "end of file";
  return "'" + token->getText() + "'";
}

/// The location of a token, underlining all of it.
SourceLoc tokenLoc(uint32_t file, Token *token) {
  if (token == nullptr)
    return {file, 1, 1, 1};
  uint32_t length =
      token->getType() == Token::EOF ? 1 : std::max<uint32_t>(1, codePoints(token->getText()));
  return {file, static_cast<uint32_t>(token->getLine()),
          static_cast<uint32_t>(token->getCharPositionInLine()) + 1, length};
}

/// ANTLR's recovery, with messages for people. ANTLR decides where input
/// went wrong and how to resynchronize; this class decides what to say:
///  - at most one error per declaration, since later ones in the same
///    declaration are nearly always echoes of the first;
///  - the unclosed bracket, when the input ends inside one;
///  - the declaration keyword, when what follows it has the wrong form;
///  - a note at the opening bracket when its closing one is missing.
class ErrorStrategy : public antlr4::DefaultErrorStrategy {
public:
  ErrorStrategy(uint32_t file, Diag &diag) : file_(file), diag_(diag) {}

protected:
  enum class Kind { Unexpected, Mismatch, Missing };

  void reportNoViableAlternative(antlr4::Parser *parser,
                                 const antlr4::NoViableAltException &e) override {
    explain(parser, e.getOffendingToken(), Kind::Unexpected);
  }

  void reportInputMismatch(antlr4::Parser *parser,
                           const antlr4::InputMismatchException &e) override {
    explain(parser, e.getOffendingToken(), Kind::Mismatch);
  }

  void reportFailedPredicate(antlr4::Parser *parser,
                             const antlr4::FailedPredicateException &e) override {
    explain(parser, e.getOffendingToken(), Kind::Unexpected);
  }

  void reportUnwantedToken(antlr4::Parser *parser) override {
    if (inErrorRecoveryMode(parser))
      return;
    beginErrorCondition(parser);
    explain(parser, parser->getCurrentToken(), Kind::Unexpected);
  }

  void reportMissingToken(antlr4::Parser *parser) override {
    if (inErrorRecoveryMode(parser))
      return;
    beginErrorCondition(parser);
    explain(parser, parser->getCurrentToken(), Kind::Missing);
  }

private:
  /// Names of the expected tokens, most useful first. When any expression
  /// may come next, its many first tokens are named "an expression".
  std::vector<std::string> expectedNames(antlr4::Parser *parser) {
    std::vector<std::string> names;
    std::vector<ssize_t> types = parser->getExpectedTokens().toList();
    auto has = [&](ssize_t t) { return std::find(types.begin(), types.end(), t) != types.end(); };
    bool expression = has(NNLexer::IDENT) && has(NNLexer::INT) && has(NNLexer::STRING);
    if (expression) {
      std::vector<ssize_t> rest;
      for (ssize_t t : types) {
        std::string literal = parser->getVocabulary().getLiteralName(t);
        bool starter = t == NNLexer::IDENT || t == NNLexer::INT || t == NNLexer::FLOAT ||
                       t == NNLexer::STRING || t == NNLexer::TRUE || t == NNLexer::FALSE ||
                       literal == "'('" || literal == "'['" || literal == "'-'";
        if (!starter)
          rest.push_back(t);
      }
      types = rest;
    }
    for (ssize_t type : types) {
      std::string name = describeTokenType(static_cast<size_t>(type), parser->getVocabulary());
      if (!name.empty() && std::find(names.begin(), names.end(), name) == names.end())
        names.push_back(name);
    }
    auto rank = [](const std::string &n) {
      static const std::vector<std::string> first{"')'", "']'", "'}'", "','", "'->'", "'{'"};
      auto it = std::find(first.begin(), first.end(), n);
      return it == first.end() ? first.size() : static_cast<size_t>(it - first.begin());
    };
    std::stable_sort(names.begin(), names.end(),
                     [&](const std::string &a, const std::string &b) { return rank(a) < rank(b); });
    if (expression)
      names.push_back("an expression");
    return names;
  }

  std::string expected(antlr4::Parser *parser) {
    std::vector<std::string> names = expectedNames(parser);
    if (names.size() > 6) {
      names.resize(5);
      std::string out;
      for (const std::string &n : names)
        out += n + ", ";
      return out + "…";
    }
    return joinNames(names, "or");
  }

  bool expects(antlr4::Parser *parser, const std::string &literal) {
    std::vector<std::string> names = expectedNames(parser);
    return std::find(names.begin(), names.end(), "'" + literal + "'") != names.end();
  }

  /// The first token of the top-level declaration being parsed, or null.
  static Token *declarationStart(antlr4::Parser *parser) {
    antlr4::ParserRuleContext *ctx = parser->getContext();
    while (ctx != nullptr) {
      auto *parent = dynamic_cast<antlr4::ParserRuleContext *>(ctx->parent);
      if (parent == nullptr)
        return nullptr; // ctx is the file itself
      if (dynamic_cast<NNParser::FileContext *>(parent) != nullptr)
        return ctx->getStart();
      ctx = parent;
    }
    return nullptr;
  }

  /// The default-channel token before `at`, or null.
  static Token *previous(antlr4::Parser *parser, Token *at) {
    antlr4::TokenStream *stream = parser->getTokenStream();
    for (size_t i = at->getTokenIndex(); i-- > 0;)
      if (stream->get(i)->getChannel() == Token::DEFAULT_CHANNEL)
        return stream->get(i);
    return nullptr;
  }

  /// The innermost bracket still open before `at`, or null.
  static Token *unclosedBracket(antlr4::Parser *parser, Token *at) {
    antlr4::TokenStream *stream = parser->getTokenStream();
    std::vector<char> closers;
    for (size_t i = at->getTokenIndex(); i-- > 0;) {
      Token *t = stream->get(i);
      if (t->getChannel() != Token::DEFAULT_CHANNEL)
        continue;
      std::string text = t->getText();
      if (text == ")" || text == "]" || text == "}") {
        closers.push_back(text[0]);
      } else if (text == "(" || text == "[" || text == "{") {
        char closer = text == "(" ? ')' : text == "[" ? ']' : '}';
        if (closers.empty())
          return t;
        if (closers.back() != closer)
          return nullptr; // mismatched already; don't guess
        closers.pop_back();
      }
    }
    return nullptr;
  }

  static std::string closerOf(Token *opener) {
    std::string t = opener->getText();
    return t == "(" ? ")" : t == "[" ? "]" : "}";
  }

  static bool startsExpression(Token *t) {
    switch (t->getType()) {
    case NNLexer::IDENT:
    case NNLexer::INT:
    case NNLexer::FLOAT:
    case NNLexer::STRING:
    case NNLexer::TRUE:
    case NNLexer::FALSE:
      return true;
    default:
      return false;
    }
  }

  static std::string keywordHint(Token *t) {
    if (t != nullptr && (t->getType() == NNLexer::MODEL || t->getType() == NNLexer::BLOCK ||
                         t->getType() == NNLexer::RETURN))
      return "'" + t->getText() + "' is a keyword; choose another name";
    return {};
  }

  void explain(antlr4::Parser *parser, Token *at, Kind kind) {
    Token *decl = declarationStart(parser);
    size_t declIndex = decl != nullptr ? decl->getTokenIndex() : SIZE_MAX;
    bool atEnd = at->getType() == Token::EOF;
    if (reported_ && (declIndex == lastDeclaration_ || atEnd))
      return; // an echo of the error already reported
    reported_ = true;
    lastDeclaration_ = declIndex;

    Diagnostic d{Severity::Error, tokenLoc(file_, at), "", {}, {}};
    std::string found = describeToken(at);
    Token *opener = unclosedBracket(parser, at);
    Token *before = previous(parser, at);

    // A declaration keyword followed by the wrong form.
    std::string kw = decl != nullptr ? decl->getText() : "";
    bool nearKeyword = decl != nullptr && at->getTokenIndex() <= decl->getTokenIndex() + 2 &&
                       at->getText() != "{";
    if (nearKeyword && (kw == "data" || kw == "train")) {
      d.loc = tokenLoc(file_, decl);
      d.message = "'" + kw + "' is followed by a block";
      d.hints.push_back(kw == "data" ? "write data { path \"…\", batch 64 }"
                                     : "write train { epochs 10, seed 42 }");
    } else if (nearKeyword && (kw == "loss" || kw == "optimizer" || kw == "schedule")) {
      d.loc = tokenLoc(file_, decl);
      d.message = "'" + kw + "' needs a value";
      d.hints.push_back(kw == "loss"        ? "for example: loss cross_entropy"
                        : kw == "optimizer" ? "for example: optimizer adam(lr=1e-3)"
                                            : "for example: schedule step(every=5, gamma=0.1)");
    } else if (atEnd && opener != nullptr) {
      d.message = "expected '" + closerOf(opener) + "' before end of file";
      d.notes.push_back({tokenLoc(file_, opener), "to match this '" + opener->getText() + "'"});
    } else if (kind != Kind::Unexpected && expects(parser, ")") && opener != nullptr &&
               opener->getText() == "(" && startsExpression(at)) {
      d.message = "expected ',' or ')' before " + found;
      d.hints.push_back("separate arguments with commas");
    } else {
      std::string exp = expected(parser);
      switch (kind) {
      case Kind::Unexpected:
        d.message = "unexpected " + found + (exp.empty() ? "" : "; expected " + exp);
        break;
      case Kind::Mismatch:
        d.message = "expected " + exp + " but found " + found;
        break;
      case Kind::Missing:
        d.message = "expected " + exp + " before " + found;
        break;
      }
      if (kind != Kind::Unexpected && opener != nullptr && expects(parser, closerOf(opener)))
        d.notes.push_back({tokenLoc(file_, opener), "to match this '" + opener->getText() + "'"});
      // `model model(…)`, `return = …`: a keyword where a name belongs.
      std::string hint = keywordHint(at);
      if (hint.empty() && (at->getText() == "=" || at->getText() == ":"))
        hint = keywordHint(before);
      if (!hint.empty())
        d.hints.push_back(hint);
    }
    diag_.report(d);
  }

  uint32_t file_;
  Diag &diag_;
  bool reported_ = false;
  size_t lastDeclaration_ = 0;
};

/// Reports the tokens the lexer put on the hidden channel as mistakes.
void reportLexicalErrors(antlr4::CommonTokenStream &tokens, uint32_t file, Diag &diag) {
  for (Token *token : tokens.getTokens()) {
    SourceLoc loc = tokenLoc(file, token);
    switch (token->getType()) {
    case NNLexer::UNTERMINATED_STRING:
      diag.error(loc, "unterminated string", "a string ends with '\"' on the line it starts");
      break;
    case NNLexer::SINGLE_QUOTED: {
      std::string text = token->getText();
      diag.error(loc, "strings are written in double quotes",
                 "write \"" + text.substr(1, text.size() - 2) + "\"");
      break;
    }
    case NNLexer::UNTERMINATED_COMMENT:
      loc.length = 2;
      diag.error(loc, "unterminated /* comment", "close it with '*/'");
      break;
    case NNLexer::BAD_CHAR: {
      std::string text = token->getText();
      std::string shown = text;
      if (text.size() == 1 && (static_cast<unsigned char>(text[0]) < 0x20 || text[0] == 0x7f)) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned char>(text[0]));
        shown = hex;
      } else {
        shown = "'" + text + "'";
      }
      diag.error(loc, "unexpected character " + shown,
                 text == "'" ? "strings are written in double quotes: \"…\"" : "");
      break;
    }
    default:
      break;
    }
  }
}

/// Builds the AST from a parse tree. Tolerates the holes that error recovery
/// leaves, although the result is only used when there were no errors.
class Builder {
public:
  Builder(uint32_t file, Diag &diag) : file_(file), diag_(diag) {}

  SourceLoc loc(antlr4::ParserRuleContext *ctx) {
    if (ctx == nullptr)
      return {file_, 1, 1, 1};
    SourceLoc l = tokenLoc(file_, ctx->getStart());
    Token *stop = ctx->getStop();
    if (stop != nullptr && stop->getLine() == ctx->getStart()->getLine() &&
        stop->getStopIndex() >= ctx->getStart()->getStartIndex())
      l.length = static_cast<uint32_t>(stop->getCharPositionInLine()) + 1 +
                 codePoints(stop->getText()) - l.column;
    return l;
  }

  Ident ident(NNParser::IdentContext *ctx) {
    if (ctx == nullptr)
      return {"", loc(nullptr)};
    return {ctx->getText(), loc(ctx)};
  }

  static bool hasToken(antlr4::ParserRuleContext *ctx, const char *text) {
    for (antlr4::tree::ParseTree *child : ctx->children)
      if (auto *t = dynamic_cast<antlr4::tree::TerminalNode *>(child))
        if (t->getText() == text)
          return true;
    return false;
  }

  Module module(NNParser::FileContext *ctx) {
    Module m;
    m.file = file_;
    for (NNParser::DeclContext *d : ctx->decl()) {
      if (auto *model = dynamic_cast<NNParser::ModelDeclContext *>(d)) {
        m.models.push_back(modelDecl(model));
      } else if (auto *block = dynamic_cast<NNParser::BlockDeclContext *>(d)) {
        m.blocks.push_back(blockDecl(block));
      } else if (auto *config = dynamic_cast<NNParser::ConfigDeclContext *>(d)) {
        ConfigDecl c;
        std::vector<NNParser::IdentContext *> names = config->ident();
        c.keyword = ident(names.empty() ? nullptr : names[0]);
        if (names.size() > 1)
          c.label = ident(names[1]);
        for (NNParser::ItemContext *i : config->item())
          c.items.push_back(item(i));
        c.loc = c.keyword.loc;
        m.configs.push_back(std::move(c));
      } else if (auto *setting = dynamic_cast<NNParser::SettingDeclContext *>(d)) {
        SettingDecl s;
        s.keyword = ident(setting->ident());
        if (setting->stage() != nullptr)
          s.value = stage(setting->stage());
        s.loc = s.keyword.loc;
        m.settings.push_back(std::move(s));
      }
    }
    return m;
  }

  ModelDecl modelDecl(NNParser::ModelDeclContext *ctx) {
    ModelDecl m;
    m.loc = loc(ctx);
    m.loc.length = 5;
    m.name = ident(ctx->ident());
    if (ctx->paramList() != nullptr) {
      for (NNParser::ParamContext *p : ctx->paramList()->param()) {
        Param param;
        param.name = ident(p->ident());
        if (p->shape() != nullptr) {
          param.shapeLoc = loc(p->shape());
          for (antlr4::tree::TerminalNode *dim : p->shape()->INT()) {
            param.shape.push_back(integer(dim));
            param.dimLocs.push_back(tokenLoc(file_, dim->getSymbol()));
          }
        }
        m.params.push_back(std::move(param));
      }
    }
    m.body = body(ctx->body());
    return m;
  }

  BlockDecl blockDecl(NNParser::BlockDeclContext *ctx) {
    BlockDecl b;
    b.loc = loc(ctx);
    b.loc.length = 5;
    b.name = ident(ctx->ident());
    if (ctx->blockParams() != nullptr)
      for (NNParser::BlockParamContext *p : ctx->blockParams()->blockParam())
        b.params.push_back({ident(p->ident()), p->expr() != nullptr ? expr(p->expr()) : nullptr});
    if (ctx->blockInputs() != nullptr)
      for (NNParser::IdentContext *i : ctx->blockInputs()->ident())
        b.inputs.push_back(ident(i));
    b.body = body(ctx->body());
    return b;
  }

  std::vector<Stmt> body(NNParser::BodyContext *ctx) {
    std::vector<Stmt> out;
    if (ctx == nullptr)
      return out;
    std::vector<NNParser::StmtContext *> stmts = ctx->stmt();
    for (size_t i = 0; i < stmts.size(); ++i) {
      if (i > 0)
        checkSeparated(stmts[i - 1], stmts[i]);
      out.push_back(stmt(stmts[i]));
    }
    return out;
  }

  /// Statements need no separator, so `x -> flatten dense(10)` would read as
  /// two statements; on one line, that is nearly always a missing '->'.
  void checkSeparated(NNParser::StmtContext *prev, NNParser::StmtContext *next) {
    Token *end = prev->getStop(), *start = next->getStart();
    if (end == nullptr || start == nullptr || hasToken(prev, ";") ||
        end->getLine() != start->getLine())
      return;
    if (start->getText() == "-")
      diag_.error(tokenLoc(file_, start), "unexpected '-' after '" + end->getText() + "'",
                  "a chain is written with '->'; a lone '-' negates what follows");
    else
      diag_.error(tokenLoc(file_, start), "expected '->' before " + describeToken(start),
                  "to start another statement on this line, end the previous one with ';'");
  }

  Stmt stmt(NNParser::StmtContext *ctx) {
    Stmt s;
    s.loc = loc(ctx);
    if (auto *assign = dynamic_cast<NNParser::AssignStmtContext *>(ctx)) {
      s.kind = StmtKind::Assign;
      s.target = ident(assign->ident());
      s.value = expr(assign->expr());
    } else if (auto *ret = dynamic_cast<NNParser::ReturnStmtContext *>(ctx)) {
      s.kind = StmtKind::Return;
      s.loc.length = 6;
      s.value = expr(ret->expr());
    } else if (auto *e = dynamic_cast<NNParser::ExprStmtContext *>(ctx)) {
      s.kind = StmtKind::Expr;
      s.value = expr(e->expr());
    } else {
      s.kind = StmtKind::Expr;
    }
    return s;
  }

  ExprPtr expr(NNParser::ExprContext *ctx) {
    if (ctx == nullptr)
      return std::make_unique<Expr>(ExprKind::Name, loc(nullptr));
    ExprPtr head = operand(ctx->operand());
    std::vector<NNParser::StageContext *> stages = ctx->stage();
    if (stages.empty())
      return head;
    auto chain = std::make_unique<Expr>(ExprKind::Chain, loc(ctx));
    chain->operands.push_back(std::move(head));
    for (NNParser::StageContext *s : stages)
      chain->stages.push_back(stage(s));
    return chain;
  }

  Stage stage(NNParser::StageContext *ctx) {
    Stage s;
    s.loc = loc(ctx);
    if (ctx->label != nullptr)
      s.label = ident(ctx->label);
    s.callee = ident(ctx->callee);
    s.hasParens = hasToken(ctx, "(");
    if (ctx->argList() != nullptr)
      s.args = args(ctx->argList());
    return s;
  }

  std::vector<Arg> args(NNParser::ArgListContext *ctx) {
    std::vector<Arg> out;
    for (NNParser::ArgContext *a : ctx->arg()) {
      Arg arg;
      arg.loc = loc(a);
      if (a->name != nullptr)
        arg.name = ident(a->name);
      arg.value = expr(a->expr());
      out.push_back(std::move(arg));
    }
    return out;
  }

  ExprPtr operand(NNParser::OperandContext *ctx) {
    if (ctx == nullptr)
      return std::make_unique<Expr>(ExprKind::Name, loc(nullptr));
    SourceLoc l = loc(ctx);
    if (auto *m = dynamic_cast<NNParser::MatmulExprContext *>(ctx)) {
      auto e = std::make_unique<Expr>(ExprKind::MatMul, l);
      for (NNParser::OperandContext *o : m->operand())
        e->operands.push_back(operand(o));
      return e;
    }
    if (auto *n = dynamic_cast<NNParser::NegExprContext *>(ctx)) {
      auto e = std::make_unique<Expr>(ExprKind::Neg, l);
      e->operands.push_back(operand(n->operand()));
      return e;
    }
    if (auto *c = dynamic_cast<NNParser::CallExprContext *>(ctx)) {
      auto e = std::make_unique<Expr>(ExprKind::Call, l);
      Ident callee = ident(c->ident());
      e->text = callee.name;
      e->loc = callee.loc; // point at the name being called
      if (c->argList() != nullptr)
        e->args = args(c->argList());
      return e;
    }
    if (auto *n = dynamic_cast<NNParser::NameExprContext *>(ctx)) {
      auto e = std::make_unique<Expr>(ExprKind::Name, l);
      e->text = ident(n->ident()).name;
      return e;
    }
    if (auto *lit = dynamic_cast<NNParser::LiteralExprContext *>(ctx))
      return literal(lit->literal());
    if (auto *list = dynamic_cast<NNParser::ListExprContext *>(ctx)) {
      auto e = std::make_unique<Expr>(ExprKind::List, l);
      for (NNParser::ExprContext *x : list->expr())
        e->operands.push_back(expr(x));
      return e;
    }
    if (auto *p = dynamic_cast<NNParser::ParenExprContext *>(ctx))
      return expr(p->expr());
    return std::make_unique<Expr>(ExprKind::Name, l);
  }

  int64_t integer(antlr4::tree::TerminalNode *node) {
    std::string text = node->getText();
    int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) {
      diag_.error(tokenLoc(file_, node->getSymbol()), "integer " + text + " is too large",
                  "integers must be below 2^63");
      return 0;
    }
    return value;
  }

  ExprPtr literal(NNParser::LiteralContext *ctx) {
    SourceLoc l = loc(ctx);
    if (ctx == nullptr)
      return std::make_unique<Expr>(ExprKind::Name, l);
    if (ctx->INT() != nullptr) {
      auto e = std::make_unique<Expr>(ExprKind::Int, l);
      e->intValue = integer(ctx->INT());
      e->text = ctx->getText();
      return e;
    }
    if (ctx->FLOAT() != nullptr) {
      auto e = std::make_unique<Expr>(ExprKind::Float, l);
      e->text = ctx->getText();
      e->floatValue = std::strtod(e->text.c_str(), nullptr);
      if (!std::isfinite(e->floatValue))
        diag_.error(l, "number " + e->text + " is out of range",
                    "numbers must fit a 64-bit float (below about 1.8e308)");
      return e;
    }
    if (ctx->STRING() != nullptr) {
      auto e = std::make_unique<Expr>(ExprKind::String, l);
      e->text = unescape(ctx->STRING()->getSymbol());
      return e;
    }
    auto e = std::make_unique<Expr>(ExprKind::Bool, l);
    e->boolValue = ctx->TRUE() != nullptr;
    e->text = ctx->getText();
    return e;
  }

  std::string unescape(Token *token) {
    std::string text = token->getText();
    std::string out;
    for (size_t i = 1; i + 1 < text.size(); ++i) {
      if (text[i] != '\\') {
        out += text[i];
        continue;
      }
      char c = text[++i];
      switch (c) {
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case '\\':
      case '"':
        out += c;
        break;
      default: {
        SourceLoc l = tokenLoc(file_, token);
        l.column += codePoints(std::string_view(text).substr(0, i - 1));
        l.length = 2;
        diag_.error(l, std::string("unknown escape sequence '\\") + c + "' in string",
                    "the escapes are \\\\, \\\", \\n and \\t");
      }
      }
    }
    return out;
  }

  Item item(NNParser::ItemContext *ctx) {
    Item it;
    it.loc = loc(ctx);
    it.name = ident(ctx->ident());
    it.loc.length = it.name.loc.length;
    if (ctx->argList() != nullptr)
      it.args = args(ctx->argList());
    if (ctx->itemValue() != nullptr) {
      Arg arg;
      arg.loc = loc(ctx->itemValue());
      arg.value = itemValue(ctx->itemValue());
      it.args.push_back(std::move(arg));
    }
    it.hasBlock = hasToken(ctx, "{");
    for (NNParser::ItemContext *child : ctx->item())
      it.children.push_back(item(child));
    return it;
  }

  ExprPtr itemValue(NNParser::ItemValueContext *ctx) {
    SourceLoc l = loc(ctx);
    if (ctx->literal() != nullptr)
      return literal(ctx->literal());
    if (ctx->INT() != nullptr || ctx->FLOAT() != nullptr) { // '-' number
      auto e = std::make_unique<Expr>(ExprKind::Neg, l);
      antlr4::tree::TerminalNode *num = ctx->INT() != nullptr ? ctx->INT() : ctx->FLOAT();
      auto n = std::make_unique<Expr>(ctx->INT() != nullptr ? ExprKind::Int : ExprKind::Float,
                                      tokenLoc(file_, num->getSymbol()));
      n->text = num->getText();
      if (ctx->INT() != nullptr)
        n->intValue = integer(num);
      else
        n->floatValue = std::strtod(n->text.c_str(), nullptr);
      e->operands.push_back(std::move(n));
      return e;
    }
    auto e = std::make_unique<Expr>(ExprKind::List, l);
    for (NNParser::ItemValueContext *v : ctx->itemValue())
      e->operands.push_back(itemValue(v));
    return e;
  }

private:
  uint32_t file_;
  Diag &diag_;
};

} // namespace

Module parseModule(const SourceManager &sources, uint32_t file, Diag &diag) {
  const SourceFile &src = sources.file(file);
  Module empty;
  empty.file = file;
  if (!checkUtf8(src, file, diag) || !prescan(src, file, diag))
    return empty;

  int errorsBefore = diag.errorCount();
  antlr4::ANTLRInputStream input(src.text());
  NNLexer lexer(&input);
  lexer.removeErrorListeners(); // BAD_CHAR catches everything the lexer could reject
  antlr4::CommonTokenStream tokens(&lexer);
  tokens.fill();
  reportLexicalErrors(tokens, file, diag);
  if (diag.errorCount() > errorsBefore)
    return empty; // what the parser would say now would be echoes

  // Two stages, as ANTLR recommends: fast SLL prediction that gives up at
  // the first error, then, only if it failed, full LL with error recovery
  // and reporting (SLL can reject what LL accepts, never the reverse).
  NNParser parser(&tokens);
  parser.removeErrorListeners();
  parser.setErrorHandler(std::make_shared<antlr4::BailErrorStrategy>());
  auto *interpreter = parser.getInterpreter<antlr4::atn::ParserATNSimulator>();
  interpreter->setPredictionMode(antlr4::atn::PredictionMode::SLL);
  NNParser::FileContext *tree = nullptr;
  try {
    tree = parser.file();
  } catch (const antlr4::ParseCancellationException &) {
    tokens.seek(0);
    parser.reset();
    parser.setErrorHandler(std::make_shared<ErrorStrategy>(file, diag));
    interpreter->setPredictionMode(antlr4::atn::PredictionMode::LL);
    tree = parser.file();
  }
  if (diag.errorCount() > errorsBefore)
    return empty;
  Builder builder(file, diag);
  Module module = builder.module(tree);
  if (diag.errorCount() > errorsBefore)
    return empty;
  return module;
}

} // namespace nnc
