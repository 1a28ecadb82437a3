#include "embed/static_embedder.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "common/durable_file.h"
#include "common/sha256.h"
#include "embed/safetensors.h"

// The default model's files, linked into the binary (embed/default_model.S).
extern "C" {
extern const char semcached_default_model_config[];
extern const char semcached_default_model_config_end[];
extern const char semcached_default_model_tokenizer[];
extern const char semcached_default_model_tokenizer_end[];
extern const char semcached_default_model_safetensors[];
extern const char semcached_default_model_safetensors_end[];
}

namespace semcached::embed {
namespace {

float HalfToFloat(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  std::uint32_t exponent = (h >> 10) & 0x1Fu;
  std::uint32_t mantissa = h & 0x3FFu;
  std::uint32_t bits = 0;
  if (exponent == 0x1F) {
    bits = sign | 0x7F800000u | (mantissa << 13);  // inf, nan
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa != 0) {  // subnormal: shift until the leading one is implicit
    exponent = 113;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --exponent;
    }
    bits = sign | (exponent << 23) | ((mantissa & 0x3FFu) << 13);
  } else {
    bits = sign;
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

template <typename T>
T ReadAs(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Element i of a floating-point tensor, as double.
double FloatAt(const TensorView& t, std::size_t i) {
  const char* p = t.data.data();
  switch (t.dtype) {
    case TensorDType::kF64: return ReadAs<double>(p + 8 * i);
    case TensorDType::kF32: return ReadAs<float>(p + 4 * i);
    case TensorDType::kF16: return HalfToFloat(ReadAs<std::uint16_t>(p + 2 * i));
    case TensorDType::kBF16: {
      const std::uint32_t bits = static_cast<std::uint32_t>(ReadAs<std::uint16_t>(p + 2 * i)) << 16;
      float f;
      std::memcpy(&f, &bits, sizeof f);
      return f;
    }
    case TensorDType::kI8: return static_cast<std::int8_t>(p[i]);
    default: return 0;
  }
}

bool IsFloat(TensorDType d) {
  return d == TensorDType::kF64 || d == TensorDType::kF32 || d == TensorDType::kF16 ||
         d == TensorDType::kBF16;
}

std::size_t Utf8Chars(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// The first `chars` characters of s.
std::string_view Utf8Prefix(std::string_view s, std::size_t chars) {
  std::size_t seen = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && seen++ == chars) return s.substr(0, i);
  }
  return s;
}

// A unit vector from the text's bytes: SHA-256 seeds a splitmix64 stream of uniform
// components, whose direction is uniform enough for texts to be near only themselves.
void HashedDirection(std::string_view text, std::vector<float>* out) {
  const Sha256Digest digest = Sha256(text);
  std::uint64_t state = 0;
  std::memcpy(&state, digest.data(), sizeof state);
  double norm = 0;
  for (float& x : *out) {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    x = static_cast<float>(static_cast<double>(z >> 11) / 9007199254740992.0 - 0.5);
    norm += static_cast<double>(x) * x;
  }
  const double scale = 1.0 / std::sqrt(norm);
  for (float& x : *out) x = static_cast<float>(x * scale);
}

}  // namespace

Result<StaticModelFiles> ReadStaticModelDir(const std::string& dir) {
  namespace fs = std::filesystem;
  struct Layout {
    const char* config;
    const char* weights;
    const char* tokenizer;
    bool sentence_transformers;
  };
  static constexpr Layout kLayouts[] = {
      {"config.json", "model.safetensors", "tokenizer.json", false},
      {"config_sentence_transformers.json", "model.safetensors", "tokenizer.json", true},
      {"config_sentence_transformers.json", "0_StaticEmbedding/model.safetensors",
       "0_StaticEmbedding/tokenizer.json", true},
  };
  const fs::path root(dir);
  for (const Layout& l : kLayouts) {
    std::error_code ec;
    if (!fs::exists(root / l.config, ec) || !fs::exists(root / l.weights, ec) ||
        !fs::exists(root / l.tokenizer, ec))
      continue;
    StaticModelFiles files;
    files.name =
        root.filename().empty() ? root.parent_path().filename().string() : root.filename().string();
    files.sentence_transformers = l.sentence_transformers;
    auto config = ReadWholeFile((root / l.config).string());
    if (!config.ok()) return config.status();
    auto tokenizer = ReadWholeFile((root / l.tokenizer).string());
    if (!tokenizer.ok()) return tokenizer.status();
    auto weights = ReadWholeFile((root / l.weights).string());
    if (!weights.ok()) return weights.status();
    files.config_json = std::move(*config);
    files.tokenizer_json = std::move(*tokenizer);
    files.safetensors = std::move(*weights);
    return files;
  }
  return NotFound("no static model in " + dir +
                  ": expected config.json, model.safetensors and tokenizer.json (Model2Vec), "
                  "or config_sentence_transformers.json with them (sentence-transformers, also "
                  "under 0_StaticEmbedding/)");
}

StaticModelFiles DefaultStaticModel() {
  StaticModelFiles files;
  files.name = kDefaultStaticModelName;
  files.config_json.assign(semcached_default_model_config, semcached_default_model_config_end);
  files.tokenizer_json.assign(semcached_default_model_tokenizer,
                              semcached_default_model_tokenizer_end);
  files.safetensors.assign(semcached_default_model_safetensors,
                           semcached_default_model_safetensors_end);
  return files;
}

StaticEmbedder::~StaticEmbedder() = default;

Result<std::unique_ptr<StaticEmbedder>> StaticEmbedder::Load(const StaticModelFiles& files,
                                                             StaticEmbedderOptions options) {
  const std::string& what = files.name;
  std::unique_ptr<StaticEmbedder> e(new StaticEmbedder());
  e->name_ = files.name;
  e->options_ = options;

  const auto config = nlohmann::json::parse(files.config_json, nullptr, false);
  if (config.is_discarded() || !config.is_object())
    return DataLoss(what + ": the model config is not a JSON object");
  if (auto n = config.find("normalize"); n != config.end() && n->is_boolean())
    e->normalize_ = n->get<bool>();

  auto tokenizer = Tokenizer::FromJson(files.tokenizer_json, what + ": tokenizer.json");
  if (!tokenizer.ok()) return tokenizer.status();
  e->tokenizer_ = std::move(*tokenizer);

  auto st = SafetensorsFile::Parse(files.safetensors, what + ": model.safetensors");
  if (!st.ok()) return st.status();
  const char* table_name = files.sentence_transformers ? "embedding.weight" : "embeddings";
  const TensorView* table = st->Find(table_name);
  if (table == nullptr)
    return DataLoss(what + ": model.safetensors has no tensor '" + table_name + "'");
  if (table->shape.size() != 2 || table->shape[0] == 0 || table->shape[1] == 0 ||
      table->shape[1] > 65536)
    return DataLoss(what + ": tensor '" + table_name + "' is not a [rows, dim] table");
  if (!IsFloat(table->dtype) && table->dtype != TensorDType::kI8)
    return DataLoss(what + ": tensor '" + table_name + "' has dtype " +
                    TensorDTypeName(table->dtype) + "; expected F64, F32, F16, BF16 or I8");
  e->rows_ = static_cast<std::size_t>(table->shape[0]);
  e->dim_ = static_cast<std::size_t>(table->shape[1]);
  e->table_dtype_ = TensorDTypeName(table->dtype);
  if (table->dtype == TensorDType::kI8) {
    e->table_i8_.resize(table->data.size());
    std::memcpy(e->table_i8_.data(), table->data.data(), table->data.size());
  } else {
    const std::size_t n = e->rows_ * e->dim_;
    e->table_f32_.resize(n);
    for (std::size_t i = 0; i < n; ++i) e->table_f32_[i] = static_cast<float>(FloatAt(*table, i));
    if (std::any_of(e->table_f32_.begin(), e->table_f32_.end(),
                    [](float f) { return !std::isfinite(f); }))
      return DataLoss(what + ": tensor '" + table_name + "' holds NaN or infinite values");
  }

  const std::size_t vocab = e->tokenizer_->tokens().size();
  const TensorView* mapping = st->Find("mapping");
  const TensorView* weights = st->Find("weights");
  if (mapping != nullptr) {
    if (mapping->shape.size() != 1 ||
        (mapping->dtype != TensorDType::kI32 && mapping->dtype != TensorDType::kI64))
      return DataLoss(what + ": tensor 'mapping' is not a vector of I32 or I64 row numbers");
    const auto n = static_cast<std::size_t>(mapping->shape[0]);
    e->mapping_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      const std::int64_t row = mapping->dtype == TensorDType::kI32
                                   ? ReadAs<std::int32_t>(mapping->data.data() + 4 * i)
                                   : ReadAs<std::int64_t>(mapping->data.data() + 8 * i);
      if (row < 0 || static_cast<std::uint64_t>(row) >= e->rows_)
        return DataLoss(what + ": tensor 'mapping' sends token " + std::to_string(i) + " to row " +
                        std::to_string(row) + " of " + std::to_string(e->rows_));
      e->mapping_[i] = static_cast<std::int32_t>(row);
    }
    if (n < vocab)
      return DataLoss(what + ": tensor 'mapping' covers " + std::to_string(n) + " of the " +
                      std::to_string(vocab) + " tokens");
  } else if (e->rows_ < vocab) {
    return DataLoss(what + ": tensor '" + table_name + "' has " + std::to_string(e->rows_) +
                    " rows for " + std::to_string(vocab) + " tokens");
  }
  if (weights != nullptr) {
    if (weights->shape.size() != 1 || !IsFloat(weights->dtype))
      return DataLoss(what + ": tensor 'weights' is not a floating-point vector");
    const auto n = static_cast<std::size_t>(weights->shape[0]);
    if (n < vocab)
      return DataLoss(what + ": tensor 'weights' covers " + std::to_string(n) + " of the " +
                      std::to_string(vocab) + " tokens");
    e->weights_.resize(n);
    for (std::size_t i = 0; i < n; ++i) e->weights_[i] = FloatAt(*weights, i);
    if (std::any_of(e->weights_.begin(), e->weights_.end(),
                    [](double w) { return !std::isfinite(w); }))
      return DataLoss(what + ": tensor 'weights' holds NaN or infinite values");
  }

  // As model2vec: the text is cut to 512 times the median token length (in characters)
  // before tokenizing, so a huge prompt costs no more than a long one.
  std::vector<std::size_t> lengths;
  for (const auto& t : e->tokenizer_->tokens())
    if (!t.empty()) lengths.push_back(Utf8Chars(t));
  std::sort(lengths.begin(), lengths.end());
  double median = 1;
  if (!lengths.empty()) {
    const std::size_t m = lengths.size() / 2;
    median = lengths.size() % 2 ? static_cast<double>(lengths[m])
                                : (static_cast<double>(lengths[m - 1]) + lengths[m]) / 2.0;
  }
  e->max_chars_ = e->max_tokens_ * static_cast<std::size_t>(median);
  e->weights_sha256_ = Sha256Hex(files.safetensors);
  return e;
}

std::vector<std::int32_t> StaticEmbedder::TokenIds(std::string_view text) const {
  std::vector<std::int32_t> ids;
  ids.reserve(32);
  tokenizer_->Encode(Utf8Prefix(text, max_chars_), &ids);
  const auto unk = tokenizer_->unk_id();
  const std::size_t limit = mapping_.empty() ? rows_ : mapping_.size();
  std::size_t kept = 0;
  for (std::int32_t id : ids) {
    if ((unk && id == *unk) || id < 0 || static_cast<std::size_t>(id) >= limit) continue;
    if (kept == max_tokens_) break;
    ids[kept++] = id;
  }
  ids.resize(kept);
  return ids;
}

Result<std::vector<float>> StaticEmbedder::Embed(std::string_view text) {
  const std::vector<std::int32_t> ids = TokenIds(text);
  std::vector<float> out(dim_, 0.0f);
  if (ids.empty()) {
    if (!options_.zeros_for_unknown_text) HashedDirection(text, &out);
    return out;
  }

  std::vector<double> sum(dim_, 0.0);
  if (!table_i8_.empty() && weights_.empty()) {
    // Integer rows add exactly in 32 bits (512 tokens of at most 128 each).
    std::vector<std::int32_t> isum(dim_, 0);
    for (std::int32_t id : ids) {
      const std::size_t row =
          mapping_.empty() ? static_cast<std::size_t>(id) : static_cast<std::size_t>(mapping_[id]);
      const std::int8_t* r = table_i8_.data() + row * dim_;
      for (std::size_t d = 0; d < dim_; ++d) isum[d] += r[d];
    }
    for (std::size_t d = 0; d < dim_; ++d) sum[d] = isum[d];
  } else {
    for (std::int32_t id : ids) {
      const std::size_t row =
          mapping_.empty() ? static_cast<std::size_t>(id) : static_cast<std::size_t>(mapping_[id]);
      const double w = weights_.empty() ? 1.0 : weights_[static_cast<std::size_t>(id)];
      if (table_i8_.empty()) {
        const float* r = table_f32_.data() + row * dim_;
        for (std::size_t d = 0; d < dim_; ++d) sum[d] += w * r[d];
      } else {
        const std::int8_t* r = table_i8_.data() + row * dim_;
        for (std::size_t d = 0; d < dim_; ++d) sum[d] += w * r[d];
      }
    }
  }
  double norm = 0;
  const double n = static_cast<double>(ids.size());
  for (std::size_t d = 0; d < dim_; ++d) {
    sum[d] /= n;
    norm += sum[d] * sum[d];
  }
  const double scale = normalize_ ? 1.0 / (std::sqrt(norm) + 1e-32) : 1.0;
  for (std::size_t d = 0; d < dim_; ++d) out[d] = static_cast<float>(sum[d] * scale);
  return out;
}

}  // namespace semcached::embed
