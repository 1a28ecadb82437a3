#include "vector/lsh.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <numeric>
#include <random>

#include "common/hash.h"
#include "vector/kernels.h"
#include "vector/quantizer.h"

namespace semcached::vector {
SimHasher::SimHasher(std::size_t dim, std::size_t bits, std::uint64_t seed)
    : dim_(dim), bits_(std::max<std::size_t>(64, bits / 64 * 64)), planes_(bits_ * dim) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0, 1);
  for (auto& p : planes_) p = g(rng);
}

void SimHasher::Hash(const float* x, std::uint64_t* out, float* margins) const {
  const KernelTable& k = Kernels();
  std::fill(out, out + words(), 0);
  for (std::size_t b = 0; b < bits_; ++b) {
    float proj = k.dot_f32(&planes_[b * dim_], x, dim_);
    if (proj > 0) out[b / 64] |= std::uint64_t{1} << (b % 64);
    if (margins != nullptr) margins[b] = std::fabs(proj);
  }
}

double SimHasher::EstimatedCosine(std::uint32_t hamming) const {
  return std::cos(M_PI * static_cast<double>(hamming) / static_cast<double>(bits_));
}

LshIndex::LshIndex(const LshOptions& o)
    : opt_(o), hasher_(o.dim, o.bits, o.seed), band_bits_(hasher_.bits() / o.tables), tables_(o.tables) {}

Result<std::unique_ptr<LshIndex>> LshIndex::Create(const LshOptions& o) {
  if (o.dim == 0) return InvalidArgument("LSH needs a dimension");
  if (o.bits < 64 || o.bits % 64 != 0 || o.bits > 4096) return InvalidArgument("LSH bits must be a multiple of 64, 64..4096");
  if (o.tables == 0 || o.bits % o.tables != 0 || o.bits / o.tables > 32) {
    return InvalidArgument("LSH tables must divide bits into bands of at most 32 bits");
  }
  return std::unique_ptr<LshIndex>(new LshIndex(o));
}

std::uint32_t LshIndex::BandKey(const std::uint64_t* fp, std::size_t table) const {
  std::uint32_t key = 0;
  const std::size_t start = table * band_bits_;
  for (std::size_t i = 0; i < band_bits_; ++i) {
    std::size_t b = start + i;
    key |= static_cast<std::uint32_t>((fp[b / 64] >> (b % 64)) & 1u) << i;
  }
  return key;
}

Status LshIndex::Add(std::uint64_t label, const float* x, std::size_t dim) {
  if (dim != opt_.dim) return InvalidArgument("vector has " + std::to_string(dim) + " dimensions; LSH index has " + std::to_string(opt_.dim));
  if (!AllFinite(x, dim)) return InvalidArgument("vector has a NaN or infinite component");
  std::vector<std::uint64_t> fp(hasher_.words());
  hasher_.Hash(x, fp.data());
  std::unique_lock<std::shared_mutex> lock(mu_);
  if (slot_of_.count(label)) {
    lock.unlock();
    Status s = Remove(label);
    if (!s.ok()) return s;
    lock.lock();
  }
  std::uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
    labels_[slot] = label;
    alive_[slot] = 1;
    std::copy(fp.begin(), fp.end(), fingerprints_.begin() + static_cast<std::ptrdiff_t>(slot * hasher_.words()));
  } else {
    slot = static_cast<std::uint32_t>(labels_.size());
    labels_.push_back(label);
    alive_.push_back(1);
    fingerprints_.insert(fingerprints_.end(), fp.begin(), fp.end());
  }
  slot_of_[label] = slot;
  for (std::size_t t = 0; t < opt_.tables; ++t) tables_[t][BandKey(fp.data(), t)].push_back(slot);
  return Status::Ok();
}

Status LshIndex::Remove(std::uint64_t label) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  auto it = slot_of_.find(label);
  if (it == slot_of_.end()) return NotFound("no vector with label " + std::to_string(label));
  std::uint32_t slot = it->second;
  const std::uint64_t* fp = &fingerprints_[slot * hasher_.words()];
  for (std::size_t t = 0; t < opt_.tables; ++t) {
    auto b = tables_[t].find(BandKey(fp, t));
    if (b == tables_[t].end()) continue;
    auto& v = b->second;
    v.erase(std::remove(v.begin(), v.end(), slot), v.end());
    if (v.empty()) tables_[t].erase(b);
  }
  alive_[slot] = 0;
  free_slots_.push_back(slot);
  slot_of_.erase(it);
  return Status::Ok();
}

Result<std::vector<LshHit>> LshIndex::Search(const float* q, std::size_t dim, std::size_t k,
                                             std::uint32_t max_hamming) const {
  if (dim != opt_.dim) return InvalidArgument("query has " + std::to_string(dim) + " dimensions; LSH index has " + std::to_string(opt_.dim));
  if (!AllFinite(q, dim)) return InvalidArgument("query has a NaN or infinite component");
  const std::size_t words = hasher_.words();
  std::vector<std::uint64_t> fp(words);
  std::vector<float> margins(hasher_.bits());
  hasher_.Hash(q, fp.data(), margins.data());
  const KernelTable& kern = Kernels();

  std::shared_lock<std::shared_mutex> lock(mu_);
  std::vector<std::uint32_t> cands;
  std::vector<std::uint8_t> seen(labels_.size(), 0);
  std::vector<std::size_t> order(band_bits_);
  for (std::size_t t = 0; t < opt_.tables; ++t) {
    std::uint32_t key = BandKey(fp.data(), t);
    // The least certain bits of this band first.
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return margins[t * band_bits_ + a] < margins[t * band_bits_ + b];
    });
    for (std::size_t p = 0; p <= std::min(opt_.probes, band_bits_); ++p) {
      std::uint32_t probe = p == 0 ? key : key ^ (1u << order[p - 1]);
      auto b = tables_[t].find(probe);
      if (b == tables_[t].end()) continue;
      for (std::uint32_t slot : b->second) {
        if (!seen[slot]) {
          seen[slot] = 1;
          cands.push_back(slot);
        }
      }
    }
  }
  std::vector<LshHit> hits;
  hits.reserve(cands.size());
  for (std::uint32_t slot : cands) {
    std::uint32_t h = kern.hamming(fp.data(), &fingerprints_[slot * words], words);
    if (h <= max_hamming) hits.push_back({labels_[slot], h, hasher_.EstimatedCosine(h)});
  }
  std::sort(hits.begin(), hits.end(), [](const LshHit& a, const LshHit& b) {
    return a.hamming != b.hamming ? a.hamming < b.hamming : a.label < b.label;
  });
  if (hits.size() > k) hits.resize(k);
  return hits;
}

std::size_t LshIndex::size() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return slot_of_.size();
}

std::size_t LshIndex::MemoryBytes() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  std::size_t bytes = fingerprints_.size() * 8 + labels_.size() * 9 + slot_of_.size() * 32;
  for (const auto& t : tables_) bytes += t.size() * 48 + t.bucket_count() * 8;
  return bytes + labels_.size() * opt_.tables * 4;
}

MinHasher::MinHasher(std::size_t hashes, std::size_t shingle_bytes, std::uint64_t seed)
    : shingle_(std::max<std::size_t>(1, shingle_bytes)), seeds_(hashes) {
  std::mt19937_64 rng(seed);
  for (auto& s : seeds_) s = rng() | 1;
}

std::vector<std::uint64_t> MinHasher::Signature(std::string_view text) const {
  std::vector<std::uint64_t> sig(seeds_.size(), ~std::uint64_t{0});
  if (text.empty()) return sig;
  const std::size_t n = text.size() < shingle_ ? 1 : text.size() - shingle_ + 1;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint64_t base = Fnv1a64(text.substr(i, shingle_));
    for (std::size_t h = 0; h < seeds_.size(); ++h) {
      std::uint64_t v = Mix64(base ^ seeds_[h]);
      if (v < sig[h]) sig[h] = v;
    }
  }
  return sig;
}

double MinHasher::Similarity(const std::vector<std::uint64_t>& a, const std::vector<std::uint64_t>& b) {
  if (a.size() != b.size() || a.empty()) return 0;
  std::size_t eq = 0;
  for (std::size_t i = 0; i < a.size(); ++i) eq += a[i] == b[i];
  return static_cast<double>(eq) / static_cast<double>(a.size());
}

MinHashLsh::MinHashLsh(std::size_t bands, std::size_t rows) : bands_(bands), rows_(rows), tables_(bands) {}

std::uint64_t MinHashLsh::BandHash(const std::vector<std::uint64_t>& sig, std::size_t band) const {
  std::uint64_t h = 0x9E3779B97F4A7C15ULL * (band + 1);
  for (std::size_t r = 0; r < rows_; ++r) h = Mix64(h ^ sig[band * rows_ + r]);
  return h;
}

Status MinHashLsh::Add(std::uint64_t label, const std::vector<std::uint64_t>& sig) {
  if (sig.size() != bands_ * rows_) return InvalidArgument("signature length must be bands x rows");
  for (std::size_t b = 0; b < bands_; ++b) tables_[b][BandHash(sig, b)].push_back(label);
  return Status::Ok();
}

std::vector<std::uint64_t> MinHashLsh::Candidates(const std::vector<std::uint64_t>& sig) const {
  std::vector<std::uint64_t> out;
  if (sig.size() != bands_ * rows_) return out;
  for (std::size_t b = 0; b < bands_; ++b) {
    auto it = tables_[b].find(BandHash(sig, b));
    if (it != tables_[b].end()) out.insert(out.end(), it->second.begin(), it->second.end());
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace semcached::vector
