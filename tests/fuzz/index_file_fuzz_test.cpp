// Fuzzes the index file loader: thousands of mutated files, with section checksums
// recomputed after each mutation so that the structural checks behind them are reached
// too. Whatever the bytes, Load must return an error or an index that then works; it must
// never crash or read out of bounds (this suite runs under ASan in CI).
#include <cstring>
#include <random>

#include <gtest/gtest.h>
#include <zlib.h>

#include "test_support.h"
#include "vector/hnsw_index.h"

namespace semcached::vector {
namespace {

using semcached::testing::ReadFile;
using semcached::testing::TempDir;
using semcached::testing::WriteFile;

// Walks the sections of an index file and rewrites each CRC to match its payload.
void FixChecksums(std::string& b) {
  std::size_t pos = 12;
  while (pos + 16 <= b.size()) {
    std::uint64_t len;
    std::memcpy(&len, &b[pos + 4], 8);
    if (len > b.size() - pos - 16) return;
    std::uint32_t crc = static_cast<std::uint32_t>(
        crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(&b[pos + 16]), static_cast<uInt>(len)));
    std::memcpy(&b[pos + 12], &crc, 4);
    pos += 16 + len;
  }
}

TEST(IndexFileFuzz, MutatedFilesNeverCrash) {
  TempDir dir;
  HnswOptions o;
  o.dim = 8;
  o.M = 4;
  o.ef_construction = 16;
  o.calibration_threshold = 40;
  o.binary_codes = true;
  o.background_maintenance = false;
  auto index = HnswIndex::Create(o);
  ASSERT_TRUE(index.ok());
  std::mt19937_64 rng(77);
  std::normal_distribution<float> g(0, 1);
  std::vector<float> v(8);
  for (int i = 0; i < 120; ++i) {
    for (auto& x : v) x = g(rng);
    ASSERT_TRUE((*index)->Add(i, v.data(), 8).ok());
  }
  ASSERT_TRUE((*index)->Remove(5).ok());
  ASSERT_TRUE((*index)->Save(dir.File("seed.idx")).ok());
  const std::string seed = ReadFile(dir.File("seed.idx"));

  int loaded = 0;
  const int iterations = 3000;
  for (int it = 0; it < iterations; ++it) {
    std::string b = seed;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      std::size_t at = rng() % b.size();
      switch (rng() % 5) {
        case 0: b[at] = static_cast<char>(b[at] ^ (1 << (rng() % 8))); break;
        case 1: b[at] = static_cast<char>(rng()); break;
        case 2: {  // a random 32-bit value, often hitting counts, ids and lengths
          std::uint32_t val = static_cast<std::uint32_t>(rng() % 3 == 0 ? rng() : rng() % 300);
          if (at + 4 <= b.size()) std::memcpy(&b[at], &val, 4);
          break;
        }
        case 3: b.resize(at); break;
        case 4: b.insert(at, std::string(1 + rng() % 16, static_cast<char>(rng()))); break;
      }
      if (b.size() < 12) break;
    }
    if (rng() % 4 != 0) FixChecksums(b);
    WriteFile(dir.File("m.idx"), b);
    HnswIndex::LoadOptions no_thread;  // no background maintenance for thousands of loads
    no_thread.background_maintenance = false;
    auto r = HnswIndex::Load(dir.File("m.idx"), no_thread);
    if (!r.ok()) continue;
    ++loaded;
    // Whatever loaded must serve.
    for (auto& x : v) x = g(rng);
    for (Precision p : {Precision::kInt8, Precision::kInt8Rescore, Precision::kExact, Precision::kCascade}) {
      SearchParams sp;
      sp.k = 5;
      sp.precision = p;
      (void)(*r)->Search(v.data(), 8, sp);
    }
    (void)(*r)->Add(100000 + it, v.data(), 8);
    (void)(*r)->Remove(7);
  }
  std::printf("fuzz: %d of %d mutated files loaded and served\n", loaded, iterations);
}

}  // namespace
}  // namespace semcached::vector
