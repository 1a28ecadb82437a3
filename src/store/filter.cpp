#include "store/filter.h"

#include <cctype>
#include <cmath>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace semcached::store {

namespace {

// A value during evaluation. Missing poisons every operation it touches (Redis skips the
// element when a field is missing or of the wrong type).
struct Missing {};
using Array = std::vector<struct Value>;
struct Value {
  std::variant<Missing, double, std::string, std::shared_ptr<Array>> v;
  bool missing() const { return std::holds_alternative<Missing>(v); }
  const double* num() const { return std::get_if<double>(&v); }
  const std::string* str() const { return std::get_if<std::string>(&v); }
  const Array* arr() const {
    auto p = std::get_if<std::shared_ptr<Array>>(&v);
    return p ? p->get() : nullptr;
  }
  bool Truthy() const {
    if (auto n = num()) return *n != 0;
    if (auto s = str()) return !s->empty();
    if (auto a = arr()) return !a->empty();
    return false;
  }
};

Value FromJson(const nlohmann::json& j) {
  if (j.is_number()) return {j.get<double>()};
  if (j.is_boolean()) return {j.get<bool>() ? 1.0 : 0.0};
  if (j.is_string()) return {j.get<std::string>()};
  if (j.is_array()) {
    auto a = std::make_shared<Array>();
    for (const auto& e : j) a->push_back(FromJson(e));
    return {a};
  }
  return {Missing{}};
}

bool Equal(const Value& a, const Value& b) {
  if (a.num() && b.num()) return *a.num() == *b.num();
  if (a.str() && b.str()) return *a.str() == *b.str();
  // A number and a numeric string compare as numbers (attributes often carry "2024").
  const Value& n = a.num() ? a : b;
  const Value& s = a.num() ? b : a;
  if (n.num() && s.str()) {
    char* end = nullptr;
    double d = std::strtod(s.str()->c_str(), &end);
    return !s.str()->empty() && end == s.str()->c_str() + s.str()->size() && d == *n.num();
  }
  return false;
}

}  // namespace

struct Filter::Node {
  enum Kind { kLiteral, kSelector, kArray, kNot, kNeg, kBinary } kind;
  std::string op;     // binary operator
  Value literal;      // kLiteral
  std::string field;  // kSelector
  std::vector<std::unique_ptr<Node>> children;

  Value Eval(const nlohmann::json& attrs) const {
    switch (kind) {
      case kLiteral: return literal;
      case kSelector: {
        if (!attrs.is_object()) return {Missing{}};
        auto it = attrs.find(field);
        return it == attrs.end() ? Value{Missing{}} : FromJson(*it);
      }
      case kArray: {
        auto a = std::make_shared<Array>();
        for (const auto& c : children) {
          Value v = c->Eval(attrs);
          if (v.missing()) return v;
          a->push_back(std::move(v));
        }
        return {a};
      }
      case kNot: {
        Value v = children[0]->Eval(attrs);
        return v.missing() ? v : Value{v.Truthy() ? 0.0 : 1.0};
      }
      case kNeg: {
        Value v = children[0]->Eval(attrs);
        return v.num() ? Value{-*v.num()} : Value{Missing{}};
      }
      case kBinary: return EvalBinary(attrs);
    }
    return {Missing{}};
  }

  Value EvalBinary(const nlohmann::json& attrs) const {
    if (op == "and" || op == "or") {
      Value l = children[0]->Eval(attrs);
      if (l.missing()) return l;
      if (op == "and" && !l.Truthy()) return {0.0};
      if (op == "or" && l.Truthy()) return {1.0};
      Value r = children[1]->Eval(attrs);
      if (r.missing()) return r;
      return {r.Truthy() ? 1.0 : 0.0};
    }
    Value l = children[0]->Eval(attrs);
    Value r = children[1]->Eval(attrs);
    if (l.missing() || r.missing()) return {Missing{}};
    auto boolean = [](bool b) { return Value{b ? 1.0 : 0.0}; };
    if (op == "==") return boolean(Equal(l, r));
    if (op == "!=") return boolean(!Equal(l, r));
    if (op == "in") {
      if (auto a = r.arr()) {
        for (const auto& e : *a) {
          if (Equal(l, e)) return boolean(true);
        }
        return boolean(false);
      }
      if (l.str() && r.str()) return boolean(r.str()->find(*l.str()) != std::string::npos);
      return {Missing{}};
    }
    if (op == "<" || op == "<=" || op == ">" || op == ">=") {
      int cmp;
      if (l.num() && r.num()) {
        cmp = *l.num() < *r.num() ? -1 : (*l.num() > *r.num() ? 1 : 0);
      } else if (l.str() && r.str()) {
        cmp = l.str()->compare(*r.str());
      } else {
        return {Missing{}};
      }
      if (op == "<") return boolean(cmp < 0);
      if (op == "<=") return boolean(cmp <= 0);
      if (op == ">") return boolean(cmp > 0);
      return boolean(cmp >= 0);
    }
    if (!l.num() || !r.num()) return {Missing{}};
    double a = *l.num(), b = *r.num();
    if (op == "+") return {a + b};
    if (op == "-") return {a - b};
    if (op == "*") return {a * b};
    if (op == "/") return b == 0 ? Value{Missing{}} : Value{a / b};
    if (op == "%") return b == 0 ? Value{Missing{}} : Value{std::fmod(a, b)};
    if (op == "**") return {std::pow(a, b)};
    return {Missing{}};
  }
};

namespace {

// Recursive descent, lowest precedence first: or, and, not, comparison (incl. in), additive,
// multiplicative, power, unary minus, primary.
class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Result<std::unique_ptr<Filter::Node>> ParseAll() {
    auto node = ParseOr();
    if (!error_.empty()) return Fail();
    SkipSpace();
    if (pos_ < text_.size()) {
      Error("unexpected '" + std::string(text_.substr(pos_, 12)) + "'");
      return Fail();
    }
    return node;
  }

 private:
  using NodePtr = std::unique_ptr<Filter::Node>;

  Status Fail() const {
    return InvalidArgument("bad filter at character " + std::to_string(error_pos_ + 1) + ": " +
                           error_);
  }
  void Error(std::string message) {
    if (error_.empty()) {
      error_ = std::move(message);
      error_pos_ = pos_;
    }
  }
  void SkipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  // Consumes `token` if next; words must not run into a following identifier character.
  bool Accept(std::string_view token) {
    SkipSpace();
    if (text_.substr(pos_, token.size()) != token) return false;
    if (std::isalpha(static_cast<unsigned char>(token.back()))) {
      std::size_t end = pos_ + token.size();
      if (end < text_.size() &&
          (std::isalnum(static_cast<unsigned char>(text_[end])) || text_[end] == '_')) {
        return false;
      }
    }
    pos_ += token.size();
    return true;
  }
  static NodePtr Binary(std::string op, NodePtr l, NodePtr r) {
    auto n = std::make_unique<Filter::Node>();
    n->kind = Filter::Node::kBinary;
    n->op = std::move(op);
    n->children.push_back(std::move(l));
    n->children.push_back(std::move(r));
    return n;
  }
  static NodePtr Unary(Filter::Node::Kind kind, NodePtr c) {
    auto n = std::make_unique<Filter::Node>();
    n->kind = kind;
    n->children.push_back(std::move(c));
    return n;
  }

  NodePtr ParseOr() {
    NodePtr l = ParseAnd();
    while (error_.empty() && (Accept("||") || Accept("or")))
      l = Binary("or", std::move(l), ParseAnd());
    return l;
  }
  NodePtr ParseAnd() {
    NodePtr l = ParseNot();
    while (error_.empty() && (Accept("&&") || Accept("and")))
      l = Binary("and", std::move(l), ParseNot());
    return l;
  }
  NodePtr ParseNot() {
    SkipSpace();
    if (text_.substr(pos_, 2) != "!=" && (Accept("!") || Accept("not"))) {
      return Unary(Filter::Node::kNot, ParseNot());
    }
    return ParseComparison();
  }
  NodePtr ParseComparison() {
    NodePtr l = ParseAdditive();
    for (std::string_view op : {"==", "!=", "<=", ">=", "<", ">", "in"}) {
      if (error_.empty() && Accept(op))
        return Binary(std::string(op), std::move(l), ParseAdditive());
    }
    return l;
  }
  NodePtr ParseAdditive() {
    NodePtr l = ParseMultiplicative();
    while (error_.empty()) {
      if (Accept("+")) {
        l = Binary("+", std::move(l), ParseMultiplicative());
      } else if (Accept("-")) {
        l = Binary("-", std::move(l), ParseMultiplicative());
      } else {
        break;
      }
    }
    return l;
  }
  NodePtr ParseMultiplicative() {
    NodePtr l = ParsePower();
    while (error_.empty()) {
      SkipSpace();
      if (text_.substr(pos_, 2) == "**") break;
      if (Accept("*")) {
        l = Binary("*", std::move(l), ParsePower());
      } else if (Accept("/")) {
        l = Binary("/", std::move(l), ParsePower());
      } else if (Accept("%")) {
        l = Binary("%", std::move(l), ParsePower());
      } else {
        break;
      }
    }
    return l;
  }
  NodePtr ParsePower() {
    NodePtr base = ParseUnary();
    if (error_.empty() && Accept("**")) return Binary("**", std::move(base), ParsePower());
    return base;
  }
  NodePtr ParseUnary() {
    if (Accept("-")) return Unary(Filter::Node::kNeg, ParseUnary());
    return ParsePrimary();
  }
  NodePtr ParsePrimary() {
    SkipSpace();
    auto node = std::make_unique<Filter::Node>();
    node->kind = Filter::Node::kLiteral;
    if (pos_ >= text_.size()) {
      Error("the expression ends where a value was expected");
      return node;
    }
    if (++depth_ > 64) {
      Error("nested too deeply");
      return node;
    }
    struct Leave {
      int& d;
      ~Leave() { --d; }
    } leave{depth_};
    char c = text_[pos_];
    if (c == '(') {
      ++pos_;
      NodePtr inner = ParseOr();
      if (error_.empty() && !Accept(")")) Error("expected ')'");
      return inner;
    }
    if (c == '[') {
      ++pos_;
      node->kind = Filter::Node::kArray;
      if (Accept("]")) return node;
      do {
        node->children.push_back(ParseOr());
      } while (error_.empty() && Accept(","));
      if (error_.empty() && !Accept("]")) Error("expected ']' or ','");
      return node;
    }
    if (c == '.') {
      ++pos_;
      std::size_t start = pos_;
      while (pos_ < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[pos_])) ||
                                     text_[pos_] == '_' || text_[pos_] == '-')) {
        ++pos_;
      }
      if (pos_ == start) {
        Error("expected a field name after '.'");
        return node;
      }
      node->kind = Filter::Node::kSelector;
      node->field = std::string(text_.substr(start, pos_ - start));
      return node;
    }
    if (c == '"' || c == '\'') {
      ++pos_;
      std::string s;
      while (pos_ < text_.size() && text_[pos_] != c) {
        if (text_[pos_] == '\\' && pos_ + 1 < text_.size()) ++pos_;
        s += text_[pos_++];
      }
      if (pos_ >= text_.size()) {
        Error("unterminated string");
        return node;
      }
      ++pos_;
      node->literal = Value{std::move(s)};
      return node;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) {
      const char* begin = text_.data() + pos_;
      std::string digits(begin, std::min<std::size_t>(text_.size() - pos_, 64));
      char* end = nullptr;
      double d = std::strtod(digits.c_str(), &end);
      pos_ += static_cast<std::size_t>(end - digits.c_str());
      node->literal = Value{d};
      return node;
    }
    if (Accept("true")) {
      node->literal = Value{1.0};
      return node;
    }
    if (Accept("false")) {
      node->literal = Value{0.0};
      return node;
    }
    Error("expected a value: a .field, a number, a quoted string, true, false, '(' or '['");
    return node;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
  int depth_ = 0;
  std::string error_;
  std::size_t error_pos_ = 0;
};

}  // namespace

Filter::~Filter() = default;

Result<std::shared_ptr<const Filter>> Filter::Parse(std::string_view expression) {
  if (expression.size() > 4096) return InvalidArgument("bad filter: longer than 4096 characters");
  Parser parser(expression);
  auto root = parser.ParseAll();
  if (!root.ok()) return root.status();
  auto filter = std::shared_ptr<Filter>(new Filter());
  filter->text_ = std::string(expression);
  filter->root_ = std::move(*root);
  return std::shared_ptr<const Filter>(std::move(filter));
}

bool Filter::Matches(const nlohmann::json& attributes) const {
  Value v = root_->Eval(attributes);
  return !v.missing() && v.Truthy();
}

bool Filter::MatchesText(std::string_view attributes) const {
  if (attributes.empty()) return false;
  auto j = nlohmann::json::parse(attributes, nullptr, false);
  if (j.is_discarded()) return false;
  return Matches(j);
}

}  // namespace semcached::store
