// Locality-sensitive hashing: cheap first passes for near-duplicates.
//
// SimHash maps a vector to the signs of its projections on random hyperplanes: the
// Hamming distance between two fingerprints estimates the angle between the vectors
// (cos(pi * h / bits)). LshIndex splits each fingerprint into bands, one hash table per
// band, and answers a query from the buckets its bands fall in plus, with multi-probe, the
// buckets reached by flipping the band bits whose projections were closest to zero (the
// least certain ones). It is built for the question "is there a near-copy of this?": O(1)
// inserts, a few bytes per vector, fast when the match is close; it is not a general
// k-nearest-neighbour index (HNSW is; see the README for where each wins).
//
// MinHash does the same for text: the minimum hash of character shingles under many hash
// functions, whose agreement rate estimates the Jaccard similarity of the shingle sets.
#pragma once

#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace semcached::vector {

class SimHasher {
 public:
  // bits: a multiple of 64.
  SimHasher(std::size_t dim, std::size_t bits, std::uint64_t seed);
  std::size_t dim() const { return dim_; }
  std::size_t bits() const { return bits_; }
  std::size_t words() const { return bits_ / 64; }
  // Fingerprint into out[words()]; margins (optional, bits() floats) receive |projection|.
  void Hash(const float* x, std::uint64_t* out, float* margins = nullptr) const;
  // cos(pi * hamming / bits): the angle estimate turned into a cosine.
  double EstimatedCosine(std::uint32_t hamming) const;

 private:
  std::size_t dim_, bits_;
  std::vector<float> planes_;  // bits x dim, row-major
};

struct LshOptions {
  std::size_t dim = 0;
  std::size_t bits = 256;   // fingerprint width
  std::size_t tables = 16;  // bands; bits / tables bits each (at most 32)
  std::size_t probes = 4;   // extra buckets probed per table (least certain bits flipped)
  std::uint64_t seed = 7;
};

struct LshHit {
  std::uint64_t label;
  std::uint32_t hamming;
  double estimated_cosine;
};

class LshIndex {
 public:
  static Result<std::unique_ptr<LshIndex>> Create(const LshOptions& options);

  Status Add(std::uint64_t label, const float* x, std::size_t dim);
  Status Remove(std::uint64_t label);
  // Up to k candidates from the probed buckets, closest fingerprint first, with Hamming
  // distance at most max_hamming.
  Result<std::vector<LshHit>> Search(const float* q, std::size_t dim, std::size_t k,
                                     std::uint32_t max_hamming) const;
  std::size_t size() const;
  // Fingerprints and bucket entries.
  std::size_t MemoryBytes() const;
  const SimHasher& hasher() const { return hasher_; }

 private:
  explicit LshIndex(const LshOptions& o);
  std::uint32_t BandKey(const std::uint64_t* fp, std::size_t table) const;

  LshOptions opt_;
  SimHasher hasher_;
  std::size_t band_bits_;
  mutable std::shared_mutex mu_;
  std::vector<std::uint64_t> labels_;        // slot -> label
  std::vector<std::uint64_t> fingerprints_;  // slot -> words
  std::vector<std::uint8_t> alive_;
  std::vector<std::uint32_t> free_slots_;
  std::unordered_map<std::uint64_t, std::uint32_t> slot_of_;
  std::vector<std::unordered_map<std::uint32_t, std::vector<std::uint32_t>>> tables_;
};

// MinHash signatures over character shingles of UTF-8 text (bytes; normalize first).
class MinHasher {
 public:
  MinHasher(std::size_t hashes, std::size_t shingle_bytes, std::uint64_t seed);
  std::vector<std::uint64_t> Signature(std::string_view text) const;
  // Share of equal positions: an estimate of the Jaccard similarity of the shingle sets.
  static double Similarity(const std::vector<std::uint64_t>& a, const std::vector<std::uint64_t>& b);
  std::size_t hashes() const { return seeds_.size(); }

 private:
  std::size_t shingle_;
  std::vector<std::uint64_t> seeds_;
};

// Banded LSH over MinHash signatures: bands x rows = signature length.
class MinHashLsh {
 public:
  MinHashLsh(std::size_t bands, std::size_t rows);
  Status Add(std::uint64_t label, const std::vector<std::uint64_t>& signature);
  // Labels sharing at least one band with the signature.
  std::vector<std::uint64_t> Candidates(const std::vector<std::uint64_t>& signature) const;

 private:
  std::uint64_t BandHash(const std::vector<std::uint64_t>& sig, std::size_t band) const;
  std::size_t bands_, rows_;
  std::vector<std::unordered_map<std::uint64_t, std::vector<std::uint64_t>>> tables_;
};

}  // namespace semcached::vector
