// The cache's Prometheus families: lookups by cache and result, guard rejections, stores,
// the best candidate's similarity and the time of each lookup stage; entries, text bytes and
// what hits saved are read from the caches at scrape time, so a removed cache leaves no stale
// gauge. Every labelled series is resolved once per cache (at start-up, or at the first use of
// a cache the admin API created): a lookup then costs a few atomic adds, not a label-hash
// lookup under the family's lock.
// Must not: hold a cache (the registry does), or take a lock on a lookup once warmed.
#pragma once

#include <array>
#include <map>
#include <shared_mutex>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>

#include "cache/registry.h"
#include "server/metrics.h"

namespace semcached::server {

class CacheMetrics {
 public:
  CacheMetrics(Metrics& m, const cache::CacheRegistry& registry);
  // One lookup, by what its trace says.
  void Observe(const cache::Cache& c, const cache::LookupTrace& t);
  void Stored(const cache::Cache& c);

 private:
  struct Series {
    prometheus::Counter *exact, *semantic, *miss, *withheld, *stores;
    // Guard rejections by guard name, indexed by cache::GuardVerdict (kPass unused).
    std::array<prometheus::Counter*, cache::kGuardVerdicts> guard{};
    prometheus::Histogram *best, *normalize, *embed, *search, *guards;
  };
  Series& For(const cache::Cache& c);

  prometheus::Family<prometheus::Counter>*lookups_, *guards_, *stores_;
  prometheus::Family<prometheus::Histogram>*best_, *stage_;
  std::shared_mutex mu_;
  std::map<std::string, Series> by_cache_;  // std::map: references stay valid as it grows
};

}  // namespace semcached::server
