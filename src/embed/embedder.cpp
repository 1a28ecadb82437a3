#include "embed/embedder.h"

#include <cmath>

#include <nlohmann/json.hpp>

namespace semcached::embed {

std::string EmbedderIdentity::ToJson() const {
  nlohmann::json j = {{"kind", kind},
                      {"model", model},
                      {"weights_sha256", weights_sha256},
                      {"dim", dim},
                      {"normalized", normalized}};
  return j.dump();
}

std::optional<EmbedderIdentity> EmbedderIdentity::FromJson(std::string_view text) {
  const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto kind = j.find("kind"), model = j.find("model"), sha = j.find("weights_sha256"),
       dim = j.find("dim"), normalized = j.find("normalized");
  if (kind == j.end() || !kind->is_string() || model == j.end() || !model->is_string() ||
      sha == j.end() || !sha->is_string() || dim == j.end() || !dim->is_number_unsigned() ||
      normalized == j.end() || !normalized->is_boolean())
    return std::nullopt;
  EmbedderIdentity id;
  id.kind = kind->get<std::string>();
  id.model = model->get<std::string>();
  id.weights_sha256 = sha->get<std::string>();
  id.dim = dim->get<std::size_t>();
  id.normalized = normalized->get<bool>();
  return id;
}

bool EmbedderIdentity::SameVectors(const EmbedderIdentity& other) const {
  if (kind != other.kind || dim != other.dim || normalized != other.normalized) return false;
  if (!weights_sha256.empty() && !other.weights_sha256.empty())
    return weights_sha256 == other.weights_sha256;
  return model == other.model && weights_sha256 == other.weights_sha256;
}

std::string EmbedderIdentity::Describe() const {
  std::string out = kind;
  if (!model.empty()) out += " " + model;
  out += ", " + std::to_string(dim) + "-d";
  if (!weights_sha256.empty()) out += ", weights sha256 " + weights_sha256.substr(0, 12);
  if (!normalized) out += ", not normalized";
  return out;
}

std::vector<std::string> EmbedderIdentity::Differences(const EmbedderIdentity& now) const {
  std::vector<std::string> out;
  auto field = [&](const char* name, const std::string& was, const std::string& is) {
    if (was != is)
      out.push_back(std::string(name) + " " + (was.empty() ? "(none)" : was) + " -> " +
                    (is.empty() ? "(none)" : is));
  };
  field("embedder", kind, now.kind);
  field("model", model, now.model);
  field("weights sha256", weights_sha256.substr(0, 12), now.weights_sha256.substr(0, 12));
  field("dimensions", std::to_string(dim), std::to_string(now.dim));
  field("normalization", normalized ? "on" : "off", now.normalized ? "on" : "off");
  return out;
}

std::string EmbedderMismatch(const std::string& cache_id, const EmbedderIdentity& recorded,
                             const EmbedderIdentity& now) {
  std::string changed;
  for (const auto& d : recorded.Differences(now)) changed += (changed.empty() ? "" : ", ") + d;
  return "cache '" + cache_id + "' holds vectors made by " + recorded.Describe() +
         "; its settings now give " + now.Describe() + " (" + changed +
         "). Vectors of two embedders cannot be compared: run `semcached reembed " + cache_id +
         "` to recompute them from the stored prompts, or set the cache's embedder back.";
}

Result<float> CosineOf(Embedder& embedder, std::string_view a, std::string_view b) {
  auto va = embedder.Embed(a);
  if (!va.ok()) return va.status();
  auto vb = embedder.Embed(b);
  if (!vb.ok()) return vb.status();
  double ab = 0, aa = 0, bb = 0;
  for (std::size_t i = 0; i < va->size() && i < vb->size(); ++i) {
    ab += double{(*va)[i]} * (*vb)[i];
    aa += double{(*va)[i]} * (*va)[i];
    bb += double{(*vb)[i]} * (*vb)[i];
  }
  return aa > 0 && bb > 0 ? static_cast<float>(ab / std::sqrt(aa * bb)) : 0.f;
}

}  // namespace semcached::embed
