// VectorStore: named vectors with JSON attributes, searched by cosine similarity, whatever
// holds them.
//
// Who uses it: the Redis cache keeps its vectors through it (RedisVectorSets, redis_store.h:
// one vector set, or ShardedStore over several Cluster shards); C++ programs that link the
// library use it as the vector engine's API (EmbeddedStore in process, RedisVectorStore on
// Redis 8); the Redis benchmarks drive it. The embedded cache does not: its entries are slots
// whose numbers are the HNSW labels, so it uses vector/hnsw_index.h directly and pays no
// string ids or JSON attributes per entry. Every store passes the same conformance suite
// (tests/store/conformance.h), so a caller cannot tell them apart except by speed.
//
// Conventions every store keeps:
//  - cosine similarity only, reported in -1..1 (Redis's (1+cos)/2 is converted in score.h);
//  - elements are named by non-empty strings; adding an existing name replaces its vector;
//  - attributes are a JSON object, filtered with the expression language of filter.h;
//  - bad input (wrong dimension, NaN/Inf, a bad filter or attribute JSON) is kInvalidArgument
//    and changes nothing; a backend fault is kUnavailable or kDeadlineExceeded.
// What it must not do: know about prompts, responses, TTLs or HTTP (the cache does).
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace semcached::store {

enum class Quantization { kQ8, kNoQuant, kBinary };
// Its three spellings: ours (configuration, Info), VADD's flag, and VINFO's quant-type.
struct QuantizationSpelling {
  Quantization value;
  const char* name;
  const char* vadd_flag;
  const char* vinfo_type;
};
inline constexpr QuantizationSpelling kQuantizations[] = {
    {Quantization::kQ8, "q8", "Q8", "int8"},
    {Quantization::kNoQuant, "noquant", "NOQUANT", "f32"},
    {Quantization::kBinary, "bin", "BIN", "bin"}};
const QuantizationSpelling& SpellingOf(Quantization q);
const char* QuantizationName(Quantization q);
Result<Quantization> ParseQuantization(const std::string& name);  // q8 | noquant | bin

// Fixed when a collection is created; a store repeats them on every write.
struct CollectionOptions {
  std::size_t dim = 0;
  Quantization quantization = Quantization::kQ8;
  std::size_t M = 16;
  std::size_t ef_construction = 200;
  std::size_t reduce = 0;  // Redis REDUCE (random projection) to this many dims; 0: none
};

struct Element {
  std::string id;
  std::vector<float> vector;
  std::string attributes;  // a JSON object, or empty for none
};

struct SearchRequest {
  std::size_t k = 10;
  std::size_t ef = 0;         // 0: the store's default
  std::string filter;         // filter.h expression; empty: none
  std::size_t filter_ef = 0;  // candidates examined when filtering; 0: default
  bool exact = false;         // exhaustive search (Redis TRUTH): ground truth, slow
  bool with_attributes = false;
};

struct Hit {
  std::string id;
  float similarity = 0;    // cosine
  std::string attributes;  // when asked for; empty if none
};

struct StoreInfo {
  std::string backend;  // "embedded" | "redis"
  std::size_t size = 0;
  std::size_t dim = 0;
  Quantization quantization = Quantization::kQ8;
  std::size_t M = 0;
};

class VectorStore {
 public:
  virtual ~VectorStore() = default;

  virtual Status Add(const Element& element) = 0;
  // One status per element, in order; a bad element does not stop the others.
  virtual std::vector<Status> AddBatch(const std::vector<Element>& elements) = 0;
  virtual Result<std::vector<Hit>> Search(std::span<const float> query,
                                          const SearchRequest& request) const = 0;
  // True when the element existed.
  virtual Result<bool> Remove(const std::string& id) = 0;
  // The stored (normalized, possibly quantized) vector; nullopt when absent.
  virtual Result<std::optional<std::vector<float>>> Vector(const std::string& id) const = 0;
  virtual Result<std::optional<std::string>> Attributes(const std::string& id) const = 0;
  // kNotFound when the element does not exist; an empty string removes the attributes.
  virtual Status SetAttributes(const std::string& id, const std::string& attributes) = 0;
  virtual Result<StoreInfo> Info() const = 0;
  // Removes every element.
  virtual Status Clear() = 0;
};

// Checks shared by every store: dimension, finite values, id, attribute JSON.
Status ValidateElement(const Element& element, std::size_t dim);
Status ValidateQuery(std::span<const float> query, std::size_t dim, const SearchRequest& request);
Status ValidateAttributes(const std::string& attributes);

}  // namespace semcached::store
