// EmbeddedStore: the VectorStore on semcached's own HNSW index, in process.
//
// Why: a program that links the library gets the vector engine with no server, behind the
// same interface as Redis. The index (vector/hnsw_index.h) works on integer labels; this
// adapter gives elements string names and JSON attributes and evaluates filters (filter.h)
// inside the graph walk. (The embedded cache uses the index directly: vector_store.h says why.) Quantization and M are taken from the options:
// the index always keeps int8 codes and re-scores with float32 (the vector engine's default
// precision), so `kNoQuant` and `kBinary` only change what Info reports.
// Must not: do network or file I/O of its own (persistence belongs to the index's Save/Load).
#pragma once

#include <memory>
#include <shared_mutex>
#include <unordered_map>

#include "store/vector_store.h"
#include "vector/hnsw_index.h"

namespace semcached::store {

class EmbeddedStore final : public VectorStore {
 public:
  static Result<std::unique_ptr<EmbeddedStore>> Create(const CollectionOptions& options);

  Status Add(const Element& element) override;
  std::vector<Status> AddBatch(const std::vector<Element>& elements) override;
  Result<std::vector<Hit>> Search(std::span<const float> query,
                                  const SearchRequest& request) const override;
  Result<bool> Remove(const std::string& id) override;
  Result<std::optional<std::vector<float>>> Vector(const std::string& id) const override;
  Result<std::optional<std::string>> Attributes(const std::string& id) const override;
  Status SetAttributes(const std::string& id, const std::string& attributes) override;
  Result<StoreInfo> Info() const override;
  Status Clear() override;

 private:
  struct Meta;
  static std::shared_ptr<const Meta> MakeMeta(std::string id, std::string attributes);
  EmbeddedStore(const CollectionOptions& options, std::unique_ptr<vector::HnswIndex> index);

  CollectionOptions options_;
  std::unique_ptr<vector::HnswIndex> index_;
  mutable std::shared_mutex mu_;  // guards the maps; the index has its own locking
  std::unordered_map<std::string, std::uint64_t> labels_;
  std::unordered_map<std::uint64_t, std::shared_ptr<const Meta>> meta_;
  std::uint64_t next_label_ = 1;
};

}  // namespace semcached::store
