#include "server/cache_metrics.h"

#include <mutex>

namespace semcached::server {

CacheMetrics::CacheMetrics(Metrics& m, const cache::CacheRegistry& registry) {
  lookups_ = &prometheus::BuildCounter()
                  .Name("semcached_cache_lookups_total")
                  .Help("Cache searches by cache and result: exact, semantic or miss.")
                  .Register(m.registry());
  guards_ = &prometheus::BuildCounter()
                 .Name("semcached_cache_guard_rejections_total")
                 .Help("Semantic candidates above the threshold refused, by cache and guard.")
                 .Register(m.registry());
  stores_ = &prometheus::BuildCounter()
                 .Name("semcached_cache_stores_total")
                 .Help("Entries stored.")
                 .Register(m.registry());
  best_ = &prometheus::BuildHistogram()
               .Name("semcached_cache_best_similarity")
               .Help("Similarity of the best semantic candidate of each lookup.")
               .Register(m.registry());
  stage_ = &prometheus::BuildHistogram()
                .Name("semcached_cache_stage_seconds")
                .Help("Time per lookup stage: normalize, embed, search, guards.")
                .Register(m.registry());
  for (const auto& c : registry.All()) For(*c);
  m.AddCollector([&registry] {
    // A family of samples added below, one per cache (and label set).
    auto family = [](const char* name, const char* help, prometheus::MetricType type) {
      return prometheus::MetricFamily{name, help, type, {}};
    };
    using Type = prometheus::MetricType;
    auto entries = family("semcached_cache_entries", "Entries held, per cache.", Type::Gauge);
    auto bytes =
        family("semcached_cache_text_bytes",
               "Bytes of prompt, response and attribute text held, per cache.", Type::Gauge);
    auto memory = family("semcached_cache_memory_bytes",
                         "Memory a cache holds in this process, by part: text, vectors (codes "
                         "and in-memory originals), graph (links and id map). Zero for the "
                         "parts a Redis cache keeps in Redis.",
                         Type::Gauge);
    auto max_entries = family("semcached_cache_max_entries",
                              "A cache's entry limit (max_entries), when it has one.", Type::Gauge);
    auto max_bytes =
        family("semcached_cache_max_bytes",
               "A cache's text limit in bytes (max_bytes), when it has one.", Type::Gauge);
    auto removals = family("semcached_cache_removals_total",
                           "Entries removed, by reason: expired (TTL), deleted (by the API), "
                           "evicted (over a limit).",
                           Type::Counter);
    auto tokens =
        family("semcached_cache_tokens_saved_total",
               "Estimated prompt and response tokens of the model calls that hits replaced.",
               Type::Counter);
    auto cost =
        family("semcached_cache_cost_saved_usd_total",
               "Estimated USD of the model calls that hits replaced, at the cache's prices.",
               Type::Counter);
    auto withheld = family(
        "semcached_cache_withheld_total",
        "Hits found but not served: shadow mode, or held back for the proxy to verify, by tier.",
        Type::Counter);
    auto comparisons = family(
        "semcached_cache_answer_comparisons_total",
        "Withheld hits whose cached answer was compared with the model's, by tier, similarity "
        "bucket (lower bound) and outcome.",
        Type::Counter);
    auto feedback = family("semcached_cache_feedback_total",
                           "Labels applications sent on answers, by label.", Type::Counter);
    auto drift = family(
        "semcached_cache_drift",
        "1 when the last window of lookups differs significantly from the windows before, by "
        "signal: similarity (Kolmogorov-Smirnov on best similarities), hit_rate (z-test).",
        Type::Gauge);
    auto drift_statistic =
        family("semcached_cache_drift_statistic",
               "The drift test's effect for the last window: KS D for similarity, the hit rate "
               "difference (window minus before) for hit_rate.",
               Type::Gauge);
    auto adaptive_labels = family(
        "semcached_cache_adaptive_labels",
        "Labelled lookups behind a cache's adaptive thresholds (max_error_rate > 0).", Type::Gauge);
    auto adaptive_allowance = family(
        "semcached_cache_adaptive_allowance",
        "The largest estimated error a semantic hit may carry to be served under the cache's "
        "error budget.",
        Type::Gauge);
    auto clusters =
        family("semcached_cache_clusters",
               "Clusters of an adaptive cache's entries (k-means), as last fitted.", Type::Gauge);
    auto cluster_resets = family("semcached_cache_cluster_resets_total",
                                 "Clusters whose statistics started again because their centroid "
                                 "moved at a refit.",
                                 Type::Counter);
    auto arm_lookups =
        family("semcached_experiment_lookups_total",
               "Lookups an A/B experiment arm served, per cache and arm.", Type::Counter);
    auto arm_hits = family("semcached_experiment_hits_total",
                           "Hits an experiment arm served, by tier.", Type::Counter);
    auto arm_verified = family("semcached_experiment_verified_total",
                               "Withheld hits of an arm whose answer was compared with the "
                               "model's.",
                               Type::Counter);
    auto arm_false_hits = family(
        "semcached_experiment_false_hits_total",
        "False hits of an arm, by source: verified (caught by comparing answers, not served) "
        "or reported (feedback on a served answer).",
        Type::Counter);
    auto arm_cost = family("semcached_experiment_cost_saved_usd_total",
                           "USD the hits of an arm saved.", Type::Counter);
    auto arm_seconds = family("semcached_experiment_request_seconds",
                              "Time of the requests an arm served, as the route saw it "
                              "(upstream time included in the proxy).",
                              Type::Summary);
    // One sample of a family, a gauge's or a counter's as the family is.
    auto add = [](prometheus::MetricFamily& f, std::vector<prometheus::ClientMetric::Label> l,
                  double v) {
      prometheus::ClientMetric m;
      m.label = std::move(l);
      (f.type == prometheus::MetricType::Gauge ? m.gauge.value : m.counter.value) = v;
      f.metric.push_back(std::move(m));
    };
    const char* kTiers[] = {"exact", "semantic"};
    for (const auto& c : registry.All()) {
      auto st = c->Stats();
      const std::string& id = c->options().id;
      for (std::size_t r = 0; r < cache::kWithheldReasons; ++r)
        for (std::size_t tier = 0; tier < 2; ++tier)
          add(withheld,
              {{"cache", id},
               {"reason", cache::WithheldName(static_cast<cache::Withheld>(r))},
               {"tier", kTiers[tier]}},
              static_cast<double>(st.withheld[r][tier]));
      for (std::size_t tier = 0; tier < 2; ++tier) {
        for (std::size_t b = 0; b < cache::kSimilarityBuckets; ++b) {
          if (st.agreements[tier][b] + st.disagreements[tier][b] == 0) continue;
          for (int agree = 0; agree < 2; ++agree)
            add(comparisons,
                {{"cache", id},
                 {"tier", kTiers[tier]},
                 {"bucket", cache::SimilarityBucketName(b)},
                 {"outcome", agree ? "agree" : "disagree"}},
                static_cast<double>(agree ? st.agreements[tier][b] : st.disagreements[tier][b]));
        }
      }
      add(feedback, {{"cache", id}, {"label", "correct"}},
          static_cast<double>(st.feedback_correct));
      add(feedback, {{"cache", id}, {"label", "wrong"}}, static_cast<double>(st.feedback_wrong));
      const cache::DriftReport d = c->Drift();
      add(drift, {{"cache", id}, {"signal", "similarity"}}, d.similarity.shifted ? 1 : 0);
      add(drift, {{"cache", id}, {"signal", "hit_rate"}}, d.hit_rate.shifted ? 1 : 0);
      add(drift_statistic, {{"cache", id}, {"signal", "similarity"}}, d.similarity.statistic);
      add(drift_statistic, {{"cache", id}, {"signal", "hit_rate"}}, d.hit_rate.statistic);
      if (c->Policy().max_error_rate > 0) {
        const auto a = c->Adaptive();
        add(adaptive_labels, {{"cache", id}}, static_cast<double>(a.labels));
        add(adaptive_allowance, {{"cache", id}}, a.allowance);
        const auto fitted = c->Clusters(/*with_thresholds=*/false);
        add(clusters, {{"cache", id}}, static_cast<double>(fitted.clusters.size()));
        add(cluster_resets, {{"cache", id}}, static_cast<double>(fitted.resets));
      }
      const auto experiment = c->Experiment();
      for (const auto& arm : experiment.arms) {
        const auto& t = arm.totals;
        const std::vector<prometheus::ClientMetric::Label> labels = {{"cache", id},
                                                                     {"arm", arm.arm.name}};
        auto with = [&labels](const char* name, const char* value) {
          auto l = labels;
          l.push_back({name, value});
          return l;
        };
        add(arm_lookups, labels, static_cast<double>(t.lookups));
        add(arm_hits, with("tier", "exact"), static_cast<double>(t.exact_hits));
        add(arm_hits, with("tier", "semantic"), static_cast<double>(t.semantic_hits));
        add(arm_verified, labels, static_cast<double>(t.verified));
        add(arm_false_hits, with("source", "verified"), static_cast<double>(t.verified_wrong));
        add(arm_false_hits, with("source", "reported"), static_cast<double>(t.reported_wrong));
        add(arm_cost, labels, t.cost_saved_usd);
        prometheus::ClientMetric m;
        m.label = labels;
        m.summary.sample_count = t.timed;
        m.summary.sample_sum = t.latency_s;
        arm_seconds.metric.push_back(std::move(m));
      }
      add(tokens, {{"cache", id}}, static_cast<double>(st.tokens_saved));
      add(cost, {{"cache", id}}, st.cost_saved_usd);
      add(entries, {{"cache", id}}, static_cast<double>(st.entries));
      add(bytes, {{"cache", id}}, static_cast<double>(st.bytes));
      const cache::CacheMemory mem = c->Memory();
      add(memory, {{"cache", id}, {"part", "text"}}, static_cast<double>(mem.text));
      add(memory, {{"cache", id}, {"part", "vectors"}}, static_cast<double>(mem.vectors));
      add(memory, {{"cache", id}, {"part", "graph"}}, static_cast<double>(mem.graph));
      const auto& o = c->options();
      if (o.max_entries > 0) add(max_entries, {{"cache", id}}, static_cast<double>(o.max_entries));
      if (o.max_bytes > 0) add(max_bytes, {{"cache", id}}, static_cast<double>(o.max_bytes));
      add(removals, {{"cache", id}, {"reason", "expired"}}, static_cast<double>(st.expired));
      add(removals, {{"cache", id}, {"reason", "deleted"}}, static_cast<double>(st.deleted));
      add(removals, {{"cache", id}, {"reason", "evicted"}}, static_cast<double>(st.evicted));
    }
    return std::vector<prometheus::MetricFamily>{entries,
                                                 bytes,
                                                 memory,
                                                 max_entries,
                                                 max_bytes,
                                                 removals,
                                                 tokens,
                                                 cost,
                                                 withheld,
                                                 feedback,
                                                 comparisons,
                                                 drift,
                                                 drift_statistic,
                                                 adaptive_labels,
                                                 adaptive_allowance,
                                                 clusters,
                                                 cluster_resets,
                                                 arm_lookups,
                                                 arm_hits,
                                                 arm_verified,
                                                 arm_false_hits,
                                                 arm_cost,
                                                 arm_seconds};
  });
}

void CacheMetrics::Observe(const cache::Cache& c, const cache::LookupTrace& t) {
  Series& s = For(c);
  (t.withheld                               ? s.withheld
   : !t.hit_tier                            ? s.miss
   : *t.hit_tier == cache::Strategy::kExact ? s.exact
                                            : s.semantic)
      ->Increment();
  for (std::size_t g = 1; g < cache::kGuardVerdicts; ++g)
    if (t.rejections_by_guard[g] > 0) s.guard[g]->Increment(t.rejections_by_guard[g]);
  if (t.best_similarity >= 0) s.best->Observe(t.best_similarity);
  s.normalize->Observe(t.normalize_us / 1e6);
  if (t.embed_us > 0) s.embed->Observe(t.embed_us / 1e6);
  if (t.search_us > 0) s.search->Observe(t.search_us / 1e6);
  if (t.guards_us > 0) s.guards->Observe(t.guards_us / 1e6);
}
void CacheMetrics::Stored(const cache::Cache& c) { For(c).stores->Increment(); }

CacheMetrics::Series& CacheMetrics::For(const cache::Cache& c) {
  const std::string& id = c.options().id;
  {
    std::shared_lock lock(mu_);
    auto it = by_cache_.find(id);
    if (it != by_cache_.end()) return it->second;
  }
  std::unique_lock lock(mu_);
  auto [it, fresh] = by_cache_.try_emplace(id);
  if (!fresh) return it->second;
  static const prometheus::Histogram::BucketBoundaries sim = {0.5,  0.6, 0.7,  0.75, 0.8,
                                                              0.85, 0.9, 0.95, 0.99, 1.0};
  static const prometheus::Histogram::BucketBoundaries secs = {1e-6, 5e-6, 1e-5, 5e-5, 1e-4,
                                                               5e-4, 1e-3, 5e-3, 1e-2, 0.1};
  Series& s = it->second;
  s.exact = &lookups_->Add({{"cache", id}, {"result", "exact"}});
  s.semantic = &lookups_->Add({{"cache", id}, {"result", "semantic"}});
  s.miss = &lookups_->Add({{"cache", id}, {"result", "miss"}});
  s.withheld = &lookups_->Add({{"cache", id}, {"result", "withheld"}});
  for (std::size_t g = 1; g < cache::kGuardVerdicts; ++g) {
    s.guard[g] = &guards_->Add(
        {{"cache", id}, {"guard", cache::GuardVerdictName(static_cast<cache::GuardVerdict>(g))}});
  }
  s.stores = &stores_->Add({{"cache", id}});
  s.best = &best_->Add({{"cache", id}}, sim);
  s.normalize = &stage_->Add({{"cache", id}, {"stage", "normalize"}}, secs);
  s.embed = &stage_->Add({{"cache", id}, {"stage", "embed"}}, secs);
  s.search = &stage_->Add({{"cache", id}, {"stage", "search"}}, secs);
  s.guards = &stage_->Add({{"cache", id}, {"stage", "guards"}}, secs);
  return s;
}

}  // namespace semcached::server
