#include "store/vector_store.h"

#include <cmath>

#include <nlohmann/json.hpp>

namespace semcached::store {

const QuantizationSpelling& SpellingOf(Quantization q) {
  for (const auto& s : kQuantizations) {
    if (s.value == q) return s;
  }
  return kQuantizations[0];
}

const char* QuantizationName(Quantization q) { return SpellingOf(q).name; }

Result<Quantization> ParseQuantization(const std::string& name) {
  for (const auto& s : kQuantizations) {
    if (name == s.name) return s.value;
  }
  return InvalidArgument("quantization must be q8, noquant or bin, not '" + name + "'");
}

namespace {

Status ValidateVector(std::span<const float> v, std::size_t dim, const char* what) {
  if (v.size() != dim) {
    return InvalidArgument(std::string(what) + " has " + std::to_string(v.size()) +
                           " dimensions; this collection has " + std::to_string(dim))
        .WithField(what, "dimension", "expected " + std::to_string(dim) + " values");
  }
  double norm = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      return InvalidArgument(std::string(what) + " component " + std::to_string(i) +
                             " is not a finite number")
          .WithField(what, "finite", "NaN and infinity are not allowed");
    }
    norm += static_cast<double>(v[i]) * v[i];
  }
  if (norm == 0) {
    return InvalidArgument(std::string(what) +
                           " is all zeros: it has no direction for cosine similarity")
        .WithField(what, "nonzero", "at least one component must be non-zero");
  }
  return Status::Ok();
}

}  // namespace

Status ValidateAttributes(const std::string& attributes) {
  if (attributes.empty()) return Status::Ok();
  auto j = nlohmann::json::parse(attributes, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return InvalidArgument("attributes must be a JSON object")
        .WithField("attributes", "json_object", "not a JSON object");
  }
  return Status::Ok();
}

Status ValidateElement(const Element& e, std::size_t dim) {
  if (e.id.empty())
    return InvalidArgument("element id is empty").WithField("id", "required", "must not be empty");
  if (Status s = ValidateVector(e.vector, dim, "vector"); !s.ok()) return s;
  return ValidateAttributes(e.attributes);
}

Status ValidateQuery(std::span<const float> query, std::size_t dim, const SearchRequest& r) {
  if (r.k == 0 || r.k > 10000) return InvalidArgument("k must be between 1 and 10000");
  return ValidateVector(query, dim, "query");
}

}  // namespace semcached::store
