#include "cache/recommendations.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace semcached::cache {
namespace {

std::string Fixed(double v, int digits = 2) {
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}
std::string Percent(double share) { return Fixed(100 * share, 1) + "%"; }
std::string Bytes(double b) {
  if (b >= 1024.0 * 1024 * 1024) return Fixed(b / (1024.0 * 1024 * 1024), 1) + " GiB";
  if (b >= 1024.0 * 1024) return Fixed(b / (1024.0 * 1024), 1) + " MiB";
  return Fixed(b / 1024.0, 1) + " KiB";
}

// The row of the what-if table nearest to a threshold.
const ThresholdRow* RowAt(const TuningReport& t, float threshold) {
  const ThresholdRow* best = nullptr;
  for (const auto& r : t.rows)
    if (best == nullptr ||
        std::fabs(r.threshold - threshold) < std::fabs(best->threshold - threshold))
      best = &r;
  return best;
}

Advice Start(std::string setting, std::string current) {
  Advice a;
  a.setting = std::move(setting);
  a.current = std::move(current);
  return a;
}

constexpr std::size_t kMinLabels = 50;
constexpr std::size_t kMinSignals = 20;
constexpr std::size_t kMinLookups = 200;
constexpr std::size_t kMinSearchEntries = 1000;

Advice Threshold(const RecommendationInputs& in) {
  Advice a = Start("similarity_threshold", Fixed(in.threshold, 3));
  const TuningReport& t = in.tuning;
  const std::size_t labels = t.same + t.different;
  a.evidence.push_back({"labelledLookups", static_cast<double>(labels)});
  // Labelled lookups say it best: the lowest threshold whose false-hit rate is within target.
  if (labels >= kMinLabels && t.same > 0 && t.different > 0 && t.recommended) {
    const ThresholdRow& r = *t.recommended;
    const ThresholdRow* now = RowAt(t, in.threshold);
    a.evidence.push_back({"recommendedHitRate", r.hit_rate});
    a.evidence.push_back({"recommendedFalseHitRate", r.false_hit_rate});
    if (now) {
      a.evidence.push_back({"currentHitRate", now->hit_rate});
      a.evidence.push_back({"currentFalseHitRate", now->false_hit_rate});
    }
    if (std::fabs(r.threshold - in.threshold) >= 0.01) {
      a.verdict = Verdict::kChange;
      a.suggested = Fixed(r.threshold, 3);
      a.reason = "Of " + std::to_string(labels) + " labelled lookups, " + a.suggested +
                 " is the lowest threshold whose false-hit rate (" + Percent(r.false_hit_rate) +
                 ") stays within " + Percent(t.target_false_hit_rate) + "; it serves " +
                 Percent(r.hit_rate) + " of the right answers" +
                 (now ? " against " + Percent(now->hit_rate) + " (false hits " +
                            Percent(now->false_hit_rate) + ") at the current threshold"
                      : std::string()) +
                 ".";
    } else {
      a.verdict = Verdict::kKeep;
      a.reason = "The labelled lookups put the best threshold within 0.01 of the current one.";
    }
    return a;
  }
  // Without labels: lookups that just missed, against the false-hit signals.
  const std::uint64_t wrong = in.stats.feedback_wrong, labelled = in.stats.feedback_correct + wrong;
  std::uint64_t disagree = 0, compared = 0;
  for (std::size_t tier = 0; tier < 2; ++tier)
    for (std::size_t b = 0; b < kSimilarityBuckets; ++b) {
      disagree += in.stats.disagreements[tier][b];
      compared += in.stats.agreements[tier][b] + in.stats.disagreements[tier][b];
    }
  const std::uint64_t signals = labelled + compared;
  const double false_share =
      signals ? static_cast<double>(wrong + disagree) / static_cast<double>(signals) : 0;
  a.evidence.push_back({"falseHitSignals", static_cast<double>(signals)});
  a.evidence.push_back({"falseHitShare", false_share});
  if (t.lookups < kMinLookups) {
    a.reason = "Only " + std::to_string(t.lookups) + " recent lookups and " +
               std::to_string(labels) + " labelled ones: not enough to judge the threshold (" +
               std::to_string(kMinLookups) + " lookups or " + std::to_string(kMinLabels) +
               " labels needed).";
    return a;
  }
  const ThresholdRow* at = RowAt(t, in.threshold);
  const ThresholdRow* below = RowAt(t, in.threshold - 0.03f);
  const double near = at && below ? std::max(0.0, below->served_share - at->served_share) : 0;
  a.evidence.push_back({"recentLookups", static_cast<double>(t.lookups)});
  a.evidence.push_back({"nearMissShare", near});
  if (signals >= kMinSignals && false_share > 0.05) {
    a.verdict = Verdict::kChange;
    a.suggested = Fixed(std::min(1.0f, in.threshold + 0.02f), 3);
    a.reason = Percent(false_share) + " of " + std::to_string(signals) +
               " false-hit signals (feedback and verified answers) say served answers were "
               "wrong: raise the threshold, or set max_error_rate for adaptive thresholds.";
  } else if (near >= 0.10 && (signals < kMinSignals || false_share < 0.01)) {
    a.verdict = Verdict::kChange;
    a.suggested = Fixed(std::max(0.0f, in.threshold - 0.02f), 3);
    a.reason =
        Percent(near) +
        " of recent lookups found a candidate within 0.03 below the "
        "threshold" +
        (signals >= kMinSignals ? " while false-hit signals stay at " + Percent(false_share)
                                : std::string(" and no false-hit signal says hits are wrong")) +
        ": a slightly lower threshold would serve some of them. Verify first (mode = "
        "\"shadow\" or verify_fraction) or label with feedback, then lower it.";
  } else {
    a.verdict = Verdict::kKeep;
    a.reason = "Near misses (" + Percent(near) +
               " of recent lookups within 0.03 below) and "
               "false-hit signals (" +
               Percent(false_share) + " of " + std::to_string(signals) +
               ") do not argue for a change.";
  }
  return a;
}

Advice Ttl(const RecommendationInputs& in) {
  Advice a = Start("default_ttl_ms", std::to_string(in.options.default_ttl_ms));
  std::uint64_t hits = 0;
  for (auto h : in.stats.hits_by_life) hits += h;
  a.evidence.push_back({"hitsWithTtl", static_cast<double>(hits)});
  if (in.options.default_ttl_ms <= 0) {
    a.verdict = Verdict::kKeep;
    a.reason = "Entries do not expire; they leave by eviction or deletion only.";
    return a;
  }
  if (hits < 100) {
    a.reason = "Only " + std::to_string(hits) + " hits on entries with a TTL (100 needed).";
    return a;
  }
  const double late = static_cast<double>(in.stats.hits_by_life[kLifeBuckets - 1]) / hits;
  const double early =
      static_cast<double>(in.stats.hits_by_life[0] + in.stats.hits_by_life[1]) / hits;
  const double expired_share =
      in.stats.stores ? static_cast<double>(in.stats.expired) / in.stats.stores : 0;
  a.evidence.push_back({"hitsInLastTenthOfLife", late});
  a.evidence.push_back({"hitsInFirstFifthOfLife", early});
  a.evidence.push_back({"expiredPerStore", expired_share});
  if (late >= 0.15) {
    a.verdict = Verdict::kChange;
    a.suggested = std::to_string(in.options.default_ttl_ms * 2);
    a.reason = Percent(late) +
               " of hits came in the last tenth of an entry's life: entries "
               "expire while they are still asked for. A longer TTL keeps them (if answers stay "
               "valid that long).";
  } else if (early >= 0.95 && expired_share >= 0.5) {
    a.verdict = Verdict::kChange;
    a.suggested = std::to_string(std::max<std::int64_t>(1000, in.options.default_ttl_ms / 2));
    a.reason = Percent(early) + " of hits came in the first fifth of an entry's life and " +
               Percent(expired_share) +
               " of entries expire: they sit unused for most of "
               "their TTL. A shorter one frees their memory sooner at little cost in hits.";
  } else {
    a.verdict = Verdict::kKeep;
    a.reason = "Hits spread over entries' lives (" + Percent(late) + " in the last tenth).";
  }
  return a;
}

Advice SizeLimit(const RecommendationInputs& in) {
  const bool by_bytes = in.options.max_bytes > 0 && in.options.max_entries == 0;
  Advice a = Start(by_bytes ? "max_bytes" : "max_entries",
                   std::to_string(by_bytes ? in.options.max_bytes : in.options.max_entries));
  const double evicted_share =
      in.stats.stores ? static_cast<double>(in.stats.evicted) / in.stats.stores : 0;
  a.evidence.push_back({"stores", static_cast<double>(in.stats.stores)});
  a.evidence.push_back({"evictedPerStore", evicted_share});
  a.evidence.push_back({"entries", static_cast<double>(in.stats.entries)});
  if (in.options.max_entries == 0 && in.options.max_bytes == 0) {
    a.verdict = Verdict::kKeep;
    a.reason = "No size limit: the cache grows until entries expire or are deleted.";
    return a;
  }
  if (in.stats.stores < 100) {
    a.reason = "Only " + std::to_string(in.stats.stores) + " stores so far (100 needed).";
    return a;
  }
  const std::size_t in_process = in.memory.text + in.memory.vectors + in.memory.graph;
  const double per_entry =
      in.stats.entries ? static_cast<double>(in_process) / in.stats.entries : 0;
  a.evidence.push_back({"bytesPerEntry", per_entry});
  if (evicted_share >= 0.10) {
    a.verdict = Verdict::kChange;
    const std::size_t limit = by_bytes ? in.options.max_bytes : in.options.max_entries;
    a.suggested = std::to_string(limit * 2);
    const double added_bytes =
        by_bytes ? static_cast<double>(in_process) : per_entry * static_cast<double>(limit);
    a.reason = Percent(evicted_share) +
               " of stores push an entry out: entries leave before "
               "they can be hit again. Doubling the limit costs about " +
               Bytes(added_bytes) + " more in this process" +
               (in.vectors_in_redis ? " (and the vectors in Redis)" : std::string()) + ".";
  } else {
    a.verdict = Verdict::kKeep;
    a.reason = "Evictions are " + Percent(evicted_share) + " of stores.";
  }
  return a;
}

Advice SearchEf(const RecommendationInputs& in) {
  Advice a = Start("search_ef", std::to_string(in.options.search_ef));
  const Cache::RecallProbe* now = nullptr;
  for (const auto& r : in.recall) {
    a.evidence.push_back({"recallAtEf" + std::to_string(r.ef), r.recall});
    if (r.ef == in.options.search_ef) now = &r;
  }
  if (!in.recall.empty())
    a.evidence.push_back({"probeQueries", static_cast<double>(in.recall.front().queries)});
  if (in.stats.entries < kMinSearchEntries || in.recall.empty()) {
    a.verdict = Verdict::kKeep;
    a.reason = std::to_string(in.stats.entries) + " entries: under " +
               std::to_string(kMinSearchEntries) +
               " the search visits nearly all of them at any search_ef.";
    return a;
  }
  if (now == nullptr) return a;
  const std::string at = " (recall@" + std::to_string(now->k) + " against an exact scan, " +
                         std::to_string(now->queries) + " of the cache's own vectors as queries)";
  if (now->recall < 0.95) {
    for (const auto& r : in.recall) {
      if (r.ef > now->ef && r.recall >= 0.95) {
        a.verdict = Verdict::kChange;
        a.suggested = std::to_string(r.ef);
        a.reason = "At search_ef " + a.current + " the search finds " + Percent(now->recall) +
                   " of the true nearest entries, at " + a.suggested + " " + Percent(r.recall) +
                   at + ": a paraphrase's entry is missed less often.";
        return a;
      }
    }
    a.verdict = Verdict::kChange;
    a.suggested = std::to_string(in.recall.back().ef);
    a.reason = "Recall is " + Percent(now->recall) + at + "; the largest search_ef probed gets " +
               Percent(in.recall.back().recall) + ".";
    return a;
  }
  for (const auto& r : in.recall) {
    if (r.ef < now->ef && r.recall >= 0.99 && now->recall - r.recall <= 0.005) {
      a.verdict = Verdict::kChange;
      a.suggested = std::to_string(r.ef);
      a.reason = "search_ef " + a.suggested + " already finds " + Percent(r.recall) + at +
                 ": a smaller one searches less for the same answers.";
      return a;
    }
  }
  a.verdict = Verdict::kKeep;
  a.reason = "Recall is " + Percent(now->recall) + at + ".";
  return a;
}

Advice Embedder(const RecommendationInputs& in) {
  Advice a = Start("embedder", in.embedder);
  if (in.stats.timed_lookups < 100) {
    a.reason = "Only " + std::to_string(in.stats.timed_lookups) + " lookups timed (100 needed).";
    return a;
  }
  const double n = static_cast<double>(in.stats.timed_lookups);
  const double share =
      in.stats.lookup_seconds > 0 ? in.stats.embed_seconds / in.stats.lookup_seconds : 0;
  a.evidence.push_back({"meanLookupMs", 1e3 * in.stats.lookup_seconds / n});
  a.evidence.push_back({"meanEmbedMs", 1e3 * in.stats.embed_seconds / n});
  a.evidence.push_back({"embedShareOfLookup", share});
  if (in.embedder_remote && share >= 0.6) {
    a.verdict = Verdict::kChange;
    a.suggested = "model2vec";
    a.reason = "Embedding takes " + Percent(share) + " of each lookup (" +
               Fixed(1e3 * in.stats.embed_seconds / n) + " ms of " +
               Fixed(1e3 * in.stats.lookup_seconds / n) +
               " ms) on an embedding server. An in-process static model (embedder = "
               "\"model2vec\", `semcached model pull`) answers in microseconds; compare its hit "
               "quality with `semcached tune` first.";
  } else {
    a.verdict = Verdict::kKeep;
    a.reason = "Embedding is " + Percent(share) + " of lookup time" +
               (in.embedder_remote ? "." : ", in process.");
  }
  return a;
}

Advice RedisPool(const PoolSample& p) {
  Advice a = Start("redis.pool_max", std::to_string(p.pool_max));
  a.evidence.push_back({"busyShare", p.busy_share});
  a.evidence.push_back({"waitingCommands", static_cast<double>(p.waiting)});
  if (p.waiting > 0 || p.busy_share >= 0.9) {
    a.verdict = Verdict::kChange;
    a.suggested = std::to_string(p.pool_max * 2);
    a.reason = "Commands waited for a connection (up to " + std::to_string(p.waiting) + ") with " +
               Percent(p.busy_share) +
               " of the pool busy: more connections let "
               "them go out at once (Redis handles thousands).";
  } else {
    a.verdict = Verdict::kKeep;
    a.reason = Percent(p.busy_share) + " of the pool was busy and nothing waited.";
  }
  return a;
}

}  // namespace

const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kChange: return "change";
    case Verdict::kKeep: return "keep";
    case Verdict::kUnknown: break;
  }
  return "not_enough_data";
}

std::vector<Advice> Recommend(const RecommendationInputs& in) {
  std::vector<Advice> out = {Threshold(in), Ttl(in), SizeLimit(in), SearchEf(in), Embedder(in)};
  if (in.redis_pool) out.push_back(RedisPool(*in.redis_pool));
  return out;
}

std::string RecommendationsJson(const std::string& cache_id, const std::vector<Advice>& advice) {
  nlohmann::json changes = nlohmann::json::array(), checked = nlohmann::json::array();
  for (const auto& a : advice) {
    nlohmann::json evidence = nlohmann::json::object();
    for (const auto& [k, v] : a.evidence) evidence[k] = v;
    nlohmann::json item = {{"setting", a.setting},
                           {"verdict", VerdictName(a.verdict)},
                           {"current", a.current},
                           {"reason", a.reason},
                           {"evidence", evidence}};
    if (a.verdict == Verdict::kChange) item["suggested"] = a.suggested;
    if (a.verdict == Verdict::kChange) changes.push_back(item);
    checked.push_back(std::move(item));
  }
  return nlohmann::json{{"cacheId", cache_id}, {"recommendations", changes}, {"checked", checked}}
      .dump();
}

}  // namespace semcached::cache
