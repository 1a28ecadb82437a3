#include "cache/cache.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <new>
#include <random>

#include <spdlog/spdlog.h>

#include "common/hash.h"
#include "common/tracing.h"
#include "embed/embedder.h"

namespace semcached::cache {

Status Cache::Reembed(std::unique_ptr<embed::Embedder>, const ReembedProgress&) {
  return InvalidArgument(std::string("a cache on the ") + store_name() +
                         " store cannot be reembedded");
}

const std::vector<std::pair<std::string, Eviction>>& EvictionNames() {
  static const std::vector<std::pair<std::string, Eviction>> names = {
      {"lru", Eviction::kLru}, {"lfu", Eviction::kLfu}, {"value", Eviction::kValue}};
  return names;
}

const std::vector<std::pair<std::string, Strategy>>& StrategyNames() {
  static const std::vector<std::pair<std::string, Strategy>> names = {
      {"exact", Strategy::kExact}, {"semantic", Strategy::kSemantic}};
  return names;
}

namespace {

template <typename E>
const char* NameIn(const std::vector<std::pair<std::string, E>>& names, E value) {
  for (const auto& [name, e] : names) {
    if (e == value) return name.c_str();
  }
  return names.front().first.c_str();
}

}  // namespace

const char* EvictionName(Eviction e) { return NameIn(EvictionNames(), e); }
const char* StrategyName(Strategy s) { return NameIn(StrategyNames(), s); }

bool ParseStrategy(std::string_view text, Strategy* out) {
  for (const auto& [name, s] : StrategyNames()) {
    if (name == text) {
      *out = s;
      return true;
    }
  }
  return false;
}

std::string MakeEntryId(std::uint64_t high, std::uint64_t low) {
  static const char* hex = "0123456789abcdef";
  std::string id(32, '0');
  for (int i = 0; i < 16; ++i) {
    id[i] = hex[(high >> (60 - 4 * i)) & 15];
    id[16 + i] = hex[(low >> (60 - 4 * i)) & 15];
  }
  return id;
}

bool ParseEntryId(std::string_view id, std::uint64_t* high, std::uint64_t* low) {
  if (id.size() != 32) return false;
  std::uint64_t parts[2] = {0, 0};
  for (int i = 0; i < 32; ++i) {
    const char c = id[i];
    const int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0) return false;
    parts[i / 16] = (parts[i / 16] << 4) | static_cast<std::uint64_t>(v);
  }
  *high = parts[0];
  *low = parts[1];
  return true;
}

std::uint64_t RandomU64() {
  thread_local std::mt19937_64 rng(
      std::random_device{}() ^
      static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
  return rng();
}

std::int64_t SystemNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status FieldError(const std::string& field, const std::string& rule, const std::string& message) {
  Status s = InvalidArgument(message);
  s.WithField(field, rule, message);
  return s;
}

Status CheckAttributes(const CacheOptions& options, const Attributes& attributes,
                       const char* field) {
  for (const auto& [k, v] : attributes) {
    if (k.empty()) return FieldError(field, "key", "attribute names must not be empty");
    if (!IsValidUtf8(k) || !IsValidUtf8(v)) {
      return FieldError(std::string(field) + "." + k, "utf8", "attributes must be valid UTF-8");
    }
    if (!options.allowed_attributes.empty()) {
      bool ok = false;
      for (const auto& a : options.allowed_attributes) ok = ok || a == k;
      if (!ok) {
        return FieldError(std::string(field) + "." + k, "allowed",
                          "attribute '" + k + "' is not configured for cache " + options.id);
      }
    }
  }
  return Status::Ok();
}

Result<std::string> CheckStore(const CacheOptions& options, const std::string& prompt,
                               const std::string& response, const Attributes& attributes,
                               std::optional<std::int64_t> ttl_ms) {
  if (prompt.size() > options.max_prompt_bytes) {
    return FieldError(
        "prompt", "size",
        "prompt is longer than " + std::to_string(options.max_prompt_bytes) + " bytes");
  }
  if (response.size() > options.max_response_bytes) {
    return FieldError(
        "response", "size",
        "response is longer than " + std::to_string(options.max_response_bytes) + " bytes");
  }
  if (!IsValidUtf8(response)) return FieldError("response", "utf8", "response is not valid UTF-8");
  if (response.empty()) return FieldError("response", "required", "response must not be empty");
  if (Status s = CheckAttributes(options, attributes, "attributes"); !s.ok()) return s;
  if (ttl_ms && *ttl_ms <= 0) {
    return FieldError("ttlMillis", "positive",
                      "ttlMillis must be a positive number of milliseconds");
  }
  auto normalized = NormalizePrompt(prompt, options.normalize);
  if (!normalized.ok()) return FieldError("prompt", "utf8", normalized.status().message());
  if (normalized->empty()) return FieldError("prompt", "required", "prompt must contain text");
  return normalized;
}

Result<std::pair<std::string, float>> CheckSearch(const CacheOptions& options, const SearchQuery& q,
                                                  float default_threshold) {
  if (q.prompt.size() > options.max_prompt_bytes) {
    return FieldError(
        "prompt", "size",
        "prompt is longer than " + std::to_string(options.max_prompt_bytes) + " bytes");
  }
  float threshold = q.threshold.value_or(default_threshold >= 0 ? default_threshold
                                                                : options.similarity_threshold);
  if (!(threshold >= 0 && threshold <= 1)) {
    return FieldError("similarityThreshold", "range", "similarityThreshold must be within 0 and 1");
  }
  // The cache's floor holds whatever the request asks: a request may only be stricter.
  threshold = std::max(threshold, options.min_similarity_threshold);
  if (Status s = CheckAttributes(options, q.attributes, "attributes"); !s.ok()) return s;
  auto normalized = NormalizePrompt(q.prompt, options.normalize);
  if (!normalized.ok()) return FieldError("prompt", "utf8", normalized.status().message());
  if (normalized->empty()) return FieldError("prompt", "required", "prompt must contain text");
  return std::make_pair(std::move(*normalized), threshold);
}

namespace {

bool Servable(const Candidate& c, const Attributes& scope, std::int64_t now) {
  return c.entry && (c.expires_ms == 0 || c.expires_ms > now) && c.entry->HasAll(scope);
}

}  // namespace

Candidate* Cache::ChooseExact(std::vector<Candidate>& found, const std::string& normalized,
                              const SearchQuery& q, std::int64_t now) {
  for (auto& c : found) {
    // A backend that keeps the normalized text confirms the digest with it.
    if (!c.normalized.empty() && c.normalized != normalized) continue;
    if (Servable(c, q.attributes, now)) return &c;
  }
  return nullptr;
}

Candidate* Cache::ChooseSemantic(std::vector<Candidate>& found, const std::string& normalized,
                                 float threshold, const SearchQuery& q, std::int64_t now,
                                 LookupTrace& t) {
  for (auto& c : found) {
    t.best_similarity = std::max(t.best_similarity, c.similarity);
    if (c.similarity < threshold) break;  // ranked: none after it reaches the threshold
    if (!Servable(c, q.attributes, now)) continue;
    // Entries need not keep a normalized copy: normalizing the one or two candidates above
    // the threshold again costs a few microseconds.
    if (c.normalized.empty()) {
      auto again = NormalizePrompt(c.entry->prompt(), options().normalize);
      if (!again.ok()) continue;
      c.normalized = std::move(*again);
    }
    if (PassesGuards(GuardText(normalized, q.prompt), GuardText(c.normalized, c.entry->prompt()),
                     t))
      return &c;
  }
  return nullptr;
}

Result<FeedbackOutcome> Cache::RecordFeedback(const std::string& entry_id, const Feedback& f) {
  SearchQuery as_searched;
  as_searched.prompt = f.prompt;
  as_searched.attributes = f.attributes;
  auto checked = CheckSearch(options(), as_searched);
  if (!checked.ok()) return checked.status();
  const std::string& normalized = checked->first;
  auto entry = EntryById(entry_id);
  if (!entry.ok()) return entry.status();
  if (entry->normalized.empty()) {
    auto again = NormalizePrompt(entry->entry->prompt(), options().normalize);
    if (!again.ok()) return again.status();
    entry->normalized = std::move(*again);
  }
  FeedbackOutcome out;
  if (normalized == entry->normalized) {
    out.similarity = 1;  // the exact tier's answer: the guards have nothing to compare
  } else {
    auto similarity = PromptSimilarity(normalized, entry->normalized);
    if (!similarity.ok()) return similarity.status();
    out.similarity = *similarity;
    out.refused_by_guards = CheckGuards(GuardText(normalized, f.prompt),
                                        GuardText(entry->normalized, entry->entry->prompt()),
                                        options().guards) != GuardVerdict::kPass;
  }
  AddLabel({out.similarity, out.refused_by_guards, f.correct}, entry_id, ClusterOfEntry(entry_id));
  (f.correct ? counters_.feedback_correct : counters_.feedback_wrong)
      .fetch_add(1, std::memory_order_relaxed);
  if (auto serving = Serving(); serving && serving->running()) {
    if (ArmCounters* arm = Arm(serving, ArmOf(*serving, f.split_key, f.attributes)))
      (f.correct ? arm->reported_correct : arm->reported_wrong)
          .fetch_add(1, std::memory_order_relaxed);
  }
  if (!f.correct && options().feedback_deletes_wrong) {
    Status deleted = Delete(entry_id);
    if (!deleted.ok() && deleted.code() != ErrorCode::kNotFound) return deleted;
    out.deleted = deleted.ok();
  }
  return out;
}

void Cache::AddLabel(const LabelledLookup& l, const std::string& entry_id, int cluster,
                     bool outgoing) {
  std::lock_guard<std::mutex> lock(labelled_mu_);
  const std::uint64_t seq = labels_added_.load(std::memory_order_relaxed);
  if (outgoing && shares_labels_ && outgoing_.size() < kMaxOutgoingLabels)
    outgoing_.push_back({entry_id, l});
  // What the guards refuse is never served: it says nothing of the error of served hits.
  if (!l.refused_by_guards) {
    const Observation o{l.similarity, l.same_question};
    cache_evidence_.Add(o);
    ++labels_since_fit_;
    auto it = evidence_by_entry_.find(entry_id);
    if (it == evidence_by_entry_.end() && evidence_by_entry_.size() < kMaxLabelled)
      it = evidence_by_entry_.emplace(entry_id, ErrorEvidence{}).first;
    if (it != evidence_by_entry_.end()) it->second.Add(o);
    if (cluster >= 0 && static_cast<std::size_t>(cluster) < cluster_labels_.size()) {
      ClusterLabels& c = cluster_labels_[static_cast<std::size_t>(cluster)];
      c.evidence.Add(o);
      ++c.since_fit;
    }
  }
  if (labelled_.size() < kMaxLabelled) {
    labelled_.push_back(l);
    labelled_entries_.push_back(entry_id);
    labelled_seq_.push_back(seq);
  } else {
    labelled_[labelled_next_] = l;
    labelled_entries_[labelled_next_] = entry_id;
    labelled_seq_[labelled_next_] = seq;
    labelled_next_ = (labelled_next_ + 1) % kMaxLabelled;
  }
  labels_added_.fetch_add(1, std::memory_order_relaxed);
}

std::vector<Cache::OutgoingLabel> Cache::TakeOutgoingLabels() {
  std::lock_guard<std::mutex> lock(labelled_mu_);
  std::vector<OutgoingLabel> out;
  out.swap(outgoing_);
  return out;
}

void Cache::ImportLabel(const std::string& entry_id, const LabelledLookup& label) {
  AddLabel(label, entry_id, ClusterOfEntry(entry_id), /*outgoing=*/false);
}

void Cache::ForgetSimilarities() {
  {
    std::lock_guard<std::mutex> lock(labelled_mu_);
    labelled_.clear();
    labelled_entries_.clear();
    labelled_seq_.clear();
    outgoing_.clear();
    labelled_next_ = 0;
    evidence_by_entry_.clear();
    cache_evidence_ = ErrorEvidence{10000};
    error_curve_ = ErrorCurve{};
    labels_since_fit_ = 0;
    error_budget_ = ErrorBudget{};
    // The vectors have changed: the clusters are fitted again from the new ones.
    clusters_.reset();
    cluster_labels_.clear();
    cluster_since_.clear();
    entry_cluster_.clear();
    clustered_entries_ = 0;
  }
  labels_added_.fetch_add(1, std::memory_order_relaxed);  // the saved labels change too
  recorded_count_.store(0, std::memory_order_relaxed);
  drift_.Reset();
}

std::string Cache::SerializeLabels() const {
  std::lock_guard<std::mutex> lock(labelled_mu_);
  std::string out;
  out.reserve(labelled_.size() * 48);
  const std::size_t n = labelled_.size();
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t at = (labelled_next_ + i) % n;  // oldest first
    const LabelledLookup& l = labelled_[at];
    char line[64];
    std::snprintf(line, sizeof line, " %.6f %d %d\n", static_cast<double>(l.similarity),
                  l.refused_by_guards ? 1 : 0, l.same_question ? 1 : 0);
    out += labelled_entries_[at];
    out += line;
  }
  return out;
}

std::size_t Cache::RestoreLabels(std::string_view text) {
  std::size_t read = 0;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    const std::string line(text.substr(0, end));
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    char id[129];
    float similarity = 0;
    int refused = 0, correct = 0;
    if (std::sscanf(line.c_str(), "%128s %f %d %d", id, &similarity, &refused, &correct) != 4 ||
        !(similarity >= -1 && similarity <= 1))
      continue;
    AddLabel({similarity, refused != 0, correct != 0}, id, ClusterOfEntry(id),
             /*outgoing=*/false);
    ++read;
  }
  return read;
}

Result<bool> Cache::RecordAnswerComparison(const Hit& withheld, std::string_view cached_answer,
                                           std::string_view model_answer) {
  // Equal once normalized (whitespace, case, edge punctuation), or near as embeddings; the
  // embedder runs only for texts that differ.
  bool agree = cached_answer == model_answer;
  if (!agree) {
    auto a = NormalizePrompt(cached_answer, options().normalize);
    auto b = NormalizePrompt(model_answer, options().normalize);
    if (!a.ok()) return a.status();
    if (!b.ok()) return b.status();
    agree = *a == *b;
    if (!agree && !a->empty() && !b->empty()) {
      auto similarity = PromptSimilarity(*a, *b);
      if (!similarity.ok()) return similarity.status();
      agree = *similarity >= options().answer_agreement;
    }
  }
  const std::size_t tier = withheld.strategy == Strategy::kExact ? 0 : 1;
  (agree ? counters_.agreements
         : counters_.disagreements)[tier][SimilarityBucket(withheld.similarity)]
      .fetch_add(1, std::memory_order_relaxed);
  AddLabel({withheld.similarity, false, agree}, withheld.id, ClusterOfEntry(withheld.id));
  if (ArmCounters* arm = Arm(Serving(), withheld.arm)) {
    arm->verified.fetch_add(1, std::memory_order_relaxed);
    if (!agree) arm->verified_wrong.fetch_add(1, std::memory_order_relaxed);
  }
  return agree;
}

ErrorDecision Cache::DecideAdaptive(const std::string& entry_id, int cluster, float similarity,
                                    double max_error_rate, ErrorBudget& budget) {
  ErrorBoundOptions o;
  o.max_error_rate = max_error_rate;
  std::lock_guard<std::mutex> lock(labelled_mu_);
  // The curve follows the labels in steps: a refit sorts the cache's labels.
  if (labels_since_fit_ >= kLabelsPerFit || (labels_since_fit_ > 0 && error_curve_.blocks() == 0)) {
    error_curve_.Fit(cache_evidence_.observations());
    labels_since_fit_ = 0;
  }
  auto it = evidence_by_entry_.find(entry_id);
  // The cluster's curve, refitted as its labels grow like the cache's.
  ClusterLabels* neighbourhood =
      cluster >= 0 && static_cast<std::size_t>(cluster) < cluster_labels_.size()
          ? &cluster_labels_[static_cast<std::size_t>(cluster)]
          : nullptr;
  if (neighbourhood && (neighbourhood->since_fit >= kLabelsPerFit ||
                        (neighbourhood->since_fit > 0 && neighbourhood->curve.blocks() == 0))) {
    neighbourhood->curve.Fit(neighbourhood->evidence.observations());
    neighbourhood->since_fit = 0;
  }
  ErrorDecision d =
      EstimateHit(similarity, it == evidence_by_entry_.end() ? nullptr : &it->second, error_curve_,
                  o, kPriorStrength, neighbourhood ? &neighbourhood->curve : nullptr);
  // A hit whose own bound is within max_error_rate is served; others while the budget allows.
  // Until the cache has kLabelsBeforeBudget labels, and enough to have seen a few wrong hits
  // at the bound's rate (kWrongBeforeBudget / max_error_rate), its curve is too young to
  // spend on.
  const auto labels_before_budget = std::max<std::size_t>(
      kLabelsBeforeBudget, static_cast<std::size_t>(kWrongBeforeBudget / max_error_rate));
  d.serve =
      d.serve || (d.upper_bound <= kMaxHitError && cache_evidence_.size() >= labels_before_budget &&
                  d.mean <= budget.Allowance());
  budget.Configure(max_error_rate, o.confidence, kMaxHitError);
  // Hits whose estimates rest on the same cluster's labels err together too.
  const int block = error_curve_.At(similarity).block;
  budget.Record({d.mean, d.sd, d.upper_bound,
                 neighbourhood && neighbourhood->curve.At(similarity).block >= 0
                     ? (cluster + 1) * 100000 + neighbourhood->curve.At(similarity).block
                     : block});
  return d;
}

Cache::AdaptiveState Cache::Adaptive() const {
  const double max_error_rate = Policy().max_error_rate;
  std::lock_guard<std::mutex> lock(labelled_mu_);
  if (max_error_rate <= 0) return {};
  return {cache_evidence_.size(), error_curve_.blocks(), error_budget_.Allowance()};
}

void Cache::RecordErrorCost(double mean, double max_error_rate, ErrorBudget& budget) {
  if (max_error_rate <= 0) return;
  std::lock_guard<std::mutex> lock(labelled_mu_);
  budget.Configure(max_error_rate, ErrorBoundOptions{}.confidence, kMaxHitError);
  budget.Record({mean, 0, mean, 0});
}

void Cache::RecordSavings(std::uint64_t tokens, double usd, double seconds, int arm) {
  counters_.AddSavings(tokens, usd, seconds);
  if (ArmCounters* a = Arm(Serving(), arm)) a->AddCostSaved(usd);
}

std::shared_ptr<Cache::ServingState> Cache::Serving() const {
  if (!has_serving_.load(std::memory_order_acquire)) return nullptr;
  std::lock_guard<std::mutex> lock(serving_mu_);
  return serving_;
}

int Cache::ArmOf(const ServingState& s, std::string_view split_key, const Attributes& attributes) {
  if (!s.running()) return -1;
  if (split_key.empty() && !s.experiment.split_attribute.empty()) {
    if (auto it = attributes.find(s.experiment.split_attribute); it != attributes.end())
      split_key = it->second;
  }
  if (split_key.empty()) return -1;
  return static_cast<int>(ArmFor(s.experiment.arms, split_key, s.salt));
}

ArmCounters* Cache::Arm(const std::shared_ptr<ServingState>& s, int arm) const {
  if (!s || arm < 0 || static_cast<std::size_t>(arm) >= s->experiment.arms.size()) return nullptr;
  return &s->counters[static_cast<std::size_t>(arm)];
}

Cache::ServingPolicy Cache::Policy() const { return PolicyOf(Serving().get()); }

Cache::ServingPolicy Cache::PolicyOf(const ServingState* s) const {
  if (s && s->settled) return *s->settled;
  return {options().similarity_threshold, options().max_error_rate};
}

void Cache::SetExperiment(const ExperimentOptions& experiment) {
  auto next = std::make_shared<ServingState>();
  next->experiment = experiment;
  next->salt = Fnv1a64(options().id);
  next->counters = std::shared_ptr<ArmCounters[]>(new ArmCounters[experiment.arms.size()]);
  next->budgets.resize(experiment.arms.size());
  std::lock_guard<std::mutex> lock(serving_mu_);
  if (serving_) next->settled = serving_->settled;
  serving_ = std::move(next);
  has_serving_.store(true, std::memory_order_release);
}

Result<ExperimentArm> Cache::EndExperiment(const std::string& winner) {
  std::lock_guard<std::mutex> lock(serving_mu_);
  if (!serving_ || !serving_->running())
    return FailedPrecondition("cache " + options().id + " has no experiment running");
  for (const ExperimentArm& candidate : serving_->experiment.arms) {
    if (candidate.name != winner) continue;
    const ExperimentArm arm = candidate;  // serving_, which holds it, is replaced
    // The ended experiment's counts stay readable; its arms serve no more lookups.
    auto next = std::make_shared<ServingState>();
    next->experiment = serving_->experiment;
    next->salt = serving_->salt;
    next->counters = serving_->counters;
    next->settled = ServingPolicy{arm.threshold, arm.max_error_rate};
    next->winner = winner;
    serving_ = std::move(next);
    return arm;
  }
  return NotFound("experiment of cache " + options().id + " has no arm '" + winner + "'");
}

Cache::ExperimentSnapshot Cache::Experiment() const {
  ExperimentSnapshot out;
  auto s = Serving();
  if (!s || s->experiment.arms.empty()) return out;
  out.options = s->experiment;
  out.winner = s->winner;
  std::vector<ArmTotals> totals;
  for (std::size_t i = 0; i < s->experiment.arms.size(); ++i)
    totals.push_back(s->counters[i].Totals());
  out.arms = CompareArms(s->experiment.arms, totals);
  return out;
}

bool Cache::UsesAdaptive() const {
  if (Policy().max_error_rate > 0) return true;
  auto serving = Serving();
  if (!serving || !serving->running()) return false;
  for (const auto& arm : serving->experiment.arms)
    if (arm.max_error_rate > 0) return true;
  return false;
}

int Cache::ClusterOfEntry(const std::string& entry_id) {
  std::shared_ptr<const ClusterModel> model;
  {
    std::lock_guard<std::mutex> lock(labelled_mu_);
    if (!clusters_) return -1;
    if (auto it = entry_cluster_.find(entry_id); it != entry_cluster_.end()) return it->second;
    model = clusters_;
  }
  auto vector = EntryVector(entry_id);  // the store's call, made without the lock
  if (!vector.ok()) return -1;
  NormalizeToUnit(vector->data(), vector->size());
  const int cluster = model->Assign(vector->data(), vector->size());
  std::lock_guard<std::mutex> lock(labelled_mu_);
  if (clusters_ == model) {
    if (entry_cluster_.size() >= kMaxEntryClusters) entry_cluster_.clear();
    entry_cluster_.emplace(entry_id, cluster);
  }
  return cluster;
}

Status Cache::MaintainClusters() {
  if (!UsesAdaptive()) return Status::Ok();
  std::unique_lock<std::mutex> one_at_a_time(refit_mu_, std::try_to_lock);
  if (!one_at_a_time.owns_lock()) return Status::Ok();
  const std::size_t entries = Stats().entries;
  std::shared_ptr<const ClusterModel> previous;
  std::size_t fitted = 0;
  {
    std::lock_guard<std::mutex> lock(labelled_mu_);
    previous = clusters_;
    fitted = clustered_entries_;
  }
  const bool due = previous ? 2 * entries >= 3 * fitted || 2 * entries <= fitted
                            : entries >= kMinClusteredEntries;
  if (!due) return Status::Ok();
  auto sample = SampleVectors(kClusterSample);
  if (!sample.ok()) return sample.status();
  if (sample->size() < kMinClusteredEntries) return Status::Ok();  // a store without vectors
  for (auto& v : *sample) NormalizeToUnit(v.data(), v.size());
  auto model = std::make_shared<ClusterModel>(
      FitClusters(*sample, ClusterCount(sample->size()), Fnv1a64(options().id) + fitted));
  const std::vector<ClusterMatch> matches =
      MatchClusters(*model, previous ? *previous : ClusterModel{});

  // The labelled entries' clusters under the new model, looked up without the lock.
  std::vector<std::string> labelled;
  {
    std::lock_guard<std::mutex> lock(labelled_mu_);
    labelled.reserve(evidence_by_entry_.size());
    for (const auto& [id, evidence] : evidence_by_entry_) labelled.push_back(id);
  }
  std::unordered_map<std::string, int> assigned;
  for (const auto& id : labelled) {
    auto v = EntryVector(id);
    if (!v.ok()) continue;  // deleted since: its labels stay in the cache's curve only
    NormalizeToUnit(v->data(), v->size());
    assigned.emplace(id, model->Assign(v->data(), v->size()));
  }

  std::size_t moved = 0;
  {
    std::lock_guard<std::mutex> lock(labelled_mu_);
    const std::uint64_t now = labels_added_.load(std::memory_order_relaxed);
    // A cluster carries the statistics of the one before it that it matches, from where they
    // started, unless its centroid moved past the bound (then from now: its old labels
    // describe another neighbourhood).
    std::vector<std::uint64_t> since(model->k(), 0);
    for (std::size_t c = 0; c < model->k(); ++c) {
      const ClusterMatch& m = matches[c];
      if (m.previous < 0) continue;
      if (m.cosine < kClusterShiftCosine) {
        since[c] = now;
        ++moved;
      } else if (static_cast<std::size_t>(m.previous) < cluster_since_.size()) {
        since[c] = cluster_since_[static_cast<std::size_t>(m.previous)];
      }
    }
    std::vector<ClusterLabels> evidence(model->k());
    const std::size_t n = labelled_.size();
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t at = (labelled_next_ + i) % n;  // oldest first
      const LabelledLookup& l = labelled_[at];
      if (l.refused_by_guards) continue;
      auto it = assigned.find(labelled_entries_[at]);
      if (it == assigned.end() || it->second < 0) continue;
      const auto c = static_cast<std::size_t>(it->second);
      if (labelled_seq_[at] < since[c]) continue;
      evidence[c].evidence.Add({l.similarity, l.same_question});
    }
    for (ClusterLabels& one : evidence) one.curve.Fit(one.evidence.observations());
    clusters_ = model;
    cluster_labels_ = std::move(evidence);
    cluster_since_ = std::move(since);
    entry_cluster_ = std::move(assigned);
    clustered_entries_ = entries;
    ++cluster_refits_;
    cluster_resets_ += moved;
  }
  spdlog::info("cache {}: {} clusters of {} entries fitted{}", options().id, model->k(), entries,
               moved ? fmt::format("; {} moved past cosine {:.2f}, their statistics start again",
                                   moved, kClusterShiftCosine)
                     : std::string());
  return Status::Ok();
}

Cache::ClusterState Cache::Clusters(bool with_thresholds) const {
  ClusterState out;
  const double bound = Policy().max_error_rate;
  std::lock_guard<std::mutex> lock(labelled_mu_);
  if (!clusters_) return out;
  out.fitted_entries = clustered_entries_;
  out.refits = cluster_refits_;
  out.resets = cluster_resets_;
  ErrorBoundOptions o;
  o.max_error_rate = bound;
  for (std::size_t c = 0; c < clusters_->k(); ++c) {
    ClusterInfo info;
    info.size = clusters_->sizes[c];
    const ClusterLabels* labels = c < cluster_labels_.size() ? &cluster_labels_[c] : nullptr;
    info.labels = labels ? labels->evidence.size() : 0;
    ErrorCurve fitted;  // as the next decision would see it
    if (labels) fitted.Fit(labels->evidence.observations());
    // The lowest similarity, in steps of 0.005, from which on every hit's bound is within
    // the cache's: the region's threshold as its labels stand.
    if (bound > 0 && with_thresholds) {
      for (int step = 200; step >= 0; --step) {
        const float similarity = static_cast<float>(step) * 0.005f;
        if (EstimateHit(similarity, nullptr, error_curve_, o, kPriorStrength, &fitted).upper_bound >
            bound)
          break;
        info.threshold = similarity;
      }
    }
    out.clusters.push_back(info);
  }
  return out;
}

void Cache::RecordArmLatency(int arm, double seconds) {
  if (ArmCounters* a = Arm(Serving(), arm)) a->AddLatency(seconds);
}

void Cache::RecordDrift(float best_similarity, bool hit) {
  if (!drift_.Record(best_similarity, hit)) return;
  const DriftReport r = drift_.Report();
  if (r.similarity.shifted)
    spdlog::warn(
        "cache {}: the best similarities of the last {} lookups differ from the {} before "
        "(Kolmogorov-Smirnov D {:.3f}, p {:.2g}): the traffic has changed; thresholds tuned "
        "on the old traffic may no longer hold",
        options().id, DriftOptions{}.window,
        DriftOptions{}.window * DriftOptions{}.reference_windows, r.similarity.statistic,
        r.similarity.p_value);
  if (r.hit_rate.shifted)
    spdlog::warn(
        "cache {}: hit rate {:.1f}% in the last {} lookups against {:.1f}% before (p {:.2g})",
        options().id, 100 * r.window_hit_rate, DriftOptions{}.window, 100 * r.reference_hit_rate,
        r.hit_rate.p_value);
}

void Cache::RecordBest(float similarity) {
  const std::uint64_t at = recorded_count_.fetch_add(1, std::memory_order_relaxed);
  recorded_[at % kMaxRecorded].store(similarity, std::memory_order_relaxed);
}

TuningReport Cache::Tuning(double target_false_hit_rate) const {
  std::vector<LabelledLookup> copy;
  {
    std::lock_guard<std::mutex> lock(labelled_mu_);
    copy = labelled_;
  }
  TuningReport report = WhatIf(copy, target_false_hit_rate);
  std::vector<float> best;
  const std::uint64_t n = std::min<std::uint64_t>(recorded_count_.load(), kMaxRecorded);
  best.reserve(n);
  for (std::uint64_t i = 0; i < n; ++i)
    best.push_back(recorded_[i].load(std::memory_order_relaxed));
  AddTrafficShares(&report, best);
  return report;
}

Result<std::vector<Hit>> Cache::Search(const SearchQuery& q, LookupTrace* trace) {
  using Steady = std::chrono::steady_clock;
  using Micros = std::chrono::duration<double, std::micro>;
  LookupTrace local;
  LookupTrace& t = trace ? *trace : local;
  const auto t0 = Steady::now();
  // Spans (common/tracing.h): the lookup, and inside it each stage; the stores add embed and
  // search, the Redis client its commands.
  tracing::Span lookup_span("cache.lookup");
  if (lookup_span.recording()) {
    lookup_span.Set("semcached.cache.id", options().id);
    lookup_span.Set("semcached.cache.store", store_name());
  }
  std::optional<tracing::Span> stage_span;
  stage_span.emplace("cache.normalize");
  // The threshold and bound: the arm's when an experiment runs and the request is in one,
  // else the cache's policy.
  const std::shared_ptr<ServingState> serving = Serving();
  ServingPolicy policy = PolicyOf(serving.get());
  ErrorBudget* budget = &error_budget_;
  ArmCounters* arm = nullptr;
  if (serving && !q.threshold) {
    t.arm = ArmOf(*serving, q.split_key, q.attributes);
    if (t.arm >= 0) {
      const ExperimentArm& a = serving->experiment.arms[static_cast<std::size_t>(t.arm)];
      policy = {a.threshold, a.max_error_rate};
      budget = &serving->budgets[static_cast<std::size_t>(t.arm)];
      arm = Arm(serving, t.arm);
      t.arm_name = a.name;
    }
  }
  auto checked = CheckSearch(options(), q, policy.threshold);
  if (!checked.ok()) {
    stage_span.reset();
    lookup_span.SetError(checked.status().message());
    return checked.status();
  }
  const std::string& normalized = checked->first;
  const float threshold = checked->second;
  t.normalize_us = Micros(Steady::now() - t0).count();
  stage_span.reset();
  lookup_span.Set("semcached.cache.threshold", static_cast<double>(threshold));
  if (t.arm >= 0) lookup_span.Set("semcached.experiment.arm", t.arm_name);
  counters_.lookups.fetch_add(1, std::memory_order_relaxed);
  if (arm) arm->lookups.fetch_add(1, std::memory_order_relaxed);
  const auto& strategies = q.strategies.empty() ? options().strategies : q.strategies;
  const std::int64_t now = NowMs();
  for (Strategy strategy : strategies) {
    const bool exact = strategy == Strategy::kExact;
    stage_span.emplace(exact ? "cache.exact" : "cache.semantic");
    auto found = exact ? ExactCandidates(normalized, q, t)
                       : SemanticCandidates(normalized, threshold, q, now, t);
    if (!found.ok()) {
      stage_span->SetError(found.status().message());
      stage_span.reset();
      lookup_span.SetError(found.status().message());
      return found.status();
    }
    if (stage_span->recording()) stage_span->Set("semcached.cache.candidates", found->size());
    const auto tg = Steady::now();
    Candidate* chosen;
    if (exact) {
      chosen = ChooseExact(*found, normalized, q, now);
    } else {
      tracing::Span guards_span("cache.guards");
      chosen = ChooseSemantic(*found, normalized, threshold, q, now, t);
      if (guards_span.recording())
        guards_span.Set("semcached.cache.guard_rejections", t.guard_rejections);
    }
    if (!exact) t.guards_us += Micros(Steady::now() - tg).count();
    stage_span.reset();
    if (chosen == nullptr) continue;
    const float similarity = std::min(chosen->similarity, 1.0f);
    // Held back: shadow mode serves nothing; verification holds back a share of semantic hits,
    // and those close to the threshold, for a caller that will ask the model and compare.
    std::optional<Withheld> hold;
    if (options().shadow || q.shadow) {
      hold = Withheld::kShadow;
    } else if (!exact && policy.max_error_rate > 0 &&
               !DecideAdaptive(chosen->id, ClusterOfEntry(chosen->id), similarity,
                               policy.max_error_rate, *budget)
                    .serve) {
      hold = Withheld::kVerify;  // not enough evidence yet that this hit is right
    } else if (!exact && q.can_verify &&
               (similarity < threshold + options().verify_band ||
                (options().verify_fraction > 0 &&
                 static_cast<double>(RandomU64() >> 11) * 0x1.0p-53 < options().verify_fraction))) {
      hold = Withheld::kVerify;
    }
    if (!hold) {
      counters_.CountLife(now, chosen->expires_ms, chosen->ttl_ms);
      RecordUse(*chosen, now);
    }
    counters_.CountTime(Micros(Steady::now() - t0).count(), t.embed_us);
    if (exact) RecordErrorCost(0, policy.max_error_rate, *budget);
    Hit hit{std::move(chosen->id), std::move(chosen->entry), similarity, strategy, t.arm};
    if (lookup_span.recording()) {
      lookup_span.Set("semcached.cache.hit", !hold);
      lookup_span.Set("semcached.cache.tier", exact ? "exact" : "semantic");
      lookup_span.Set("semcached.cache.similarity", static_cast<double>(similarity));
      if (hold) lookup_span.Set("semcached.cache.withheld", WithheldName(*hold));
    }
    RecordBest(exact ? 1.0f : similarity);
    RecordDrift(exact ? 1.0f : similarity, !hold);
    if (hold) {
      counters_.withheld[static_cast<std::size_t>(*hold)][exact ? 0 : 1].fetch_add(
          1, std::memory_order_relaxed);
      if (arm && *hold == Withheld::kVerify) arm->withheld.fetch_add(1, std::memory_order_relaxed);
      t.withheld = std::move(hit);
      t.withheld_reason = *hold;
      return std::vector<Hit>{};
    }
    t.hit_tier = strategy;
    const double saved_usd = counters_.CountHit(hit, options(), q.estimate_savings);
    if (arm) {
      (exact ? arm->exact_hits : arm->semantic_hits).fetch_add(1, std::memory_order_relaxed);
      if (q.estimate_savings) arm->AddCostSaved(saved_usd);
    }
    return std::vector<Hit>{std::move(hit)};
  }
  counters_.misses.fetch_add(1, std::memory_order_relaxed);
  counters_.CountTime(Micros(Steady::now() - t0).count(), t.embed_us);
  if (lookup_span.recording()) {
    lookup_span.Set("semcached.cache.hit", false);
    if (t.best_similarity >= 0)
      lookup_span.Set("semcached.cache.similarity", static_cast<double>(t.best_similarity));
  }
  RecordErrorCost(ErrorBudget::kNoHit, policy.max_error_rate, *budget);
  RecordDrift(t.best_similarity, false);
  if (t.best_similarity >= 0) RecordBest(t.best_similarity);
  return std::vector<Hit>{};
}

bool Cache::PassesGuards(const GuardText& query, const GuardText& candidate, LookupTrace& t) {
  const GuardVerdict verdict = CheckGuards(query, candidate, options().guards);
  if (verdict == GuardVerdict::kPass) return true;
  ++t.guard_rejections;
  ++t.rejections_by_guard[static_cast<std::size_t>(verdict)];
  counters_.guard_rejections.fetch_add(1, std::memory_order_relaxed);
  return false;
}

std::size_t TextBytes(std::string_view prompt, std::string_view response,
                      const Attributes& attributes) {
  std::size_t b = prompt.size() + response.size();
  for (const auto& [k, v] : attributes) b += k.size() + v.size();
  return b;
}

double EvictionScore(const CacheOptions& o, std::int64_t last_access_ms, std::uint64_t hits,
                     std::size_t response_bytes, std::size_t entry_bytes, std::int64_t now) {
  const double last = static_cast<double>(last_access_ms);
  if (o.eviction == Eviction::kLru) return last;
  const double idle = std::max(0.0, static_cast<double>(now) - last);
  const double decayed =
      static_cast<double>(hits) *
      std::exp2(-idle / static_cast<double>(std::max<std::int64_t>(o.lfu_half_life_ms, 1)));
  if (o.eviction == Eviction::kLfu) return decayed;
  // kValue: what a hit saves grows with the response (the tokens not generated again);
  // what keeping it costs grows with all its bytes.
  return (1.0 + decayed) * static_cast<double>(response_bytes) /
         static_cast<double>(std::max<std::size_t>(entry_bytes, 1));
}

double CacheCounters::CountHit(const Hit& hit, const CacheOptions& options, bool estimate) {
  (hit.strategy == Strategy::kExact ? exact_hits : semantic_hits)
      .fetch_add(1, std::memory_order_relaxed);
  if (!estimate) return 0;
  const std::uint64_t in = EstimateTokens(hit.entry->prompt()),
                      out = EstimateTokens(hit.entry->response());
  const double usd = (in * options.input_usd_per_mtok + out * options.output_usd_per_mtok) / 1e6;
  AddSavings(in + out, usd, 0);
  return usd;
}

void CacheCounters::AddSavings(std::uint64_t tokens, double usd, double seconds) {
  tokens_saved.fetch_add(tokens, std::memory_order_relaxed);
  cost_saved_nano_usd.fetch_add(static_cast<std::uint64_t>(usd * 1e9 + 0.5),
                                std::memory_order_relaxed);
  latency_saved_micros.fetch_add(static_cast<std::uint64_t>(seconds * 1e6 + 0.5),
                                 std::memory_order_relaxed);
}

Result<std::vector<Cache::RecallProbe>> Cache::ProbeRecall(std::size_t queries,
                                                           const std::vector<std::size_t>& efs,
                                                           std::size_t k) {
  auto sample = SampleVectors(queries);
  if (!sample.ok()) return sample.status();
  std::vector<std::size_t> found(efs.size(), 0);
  std::size_t wanted = 0;
  for (const auto& q : *sample) {
    auto exact = NearestIds(q, k, 0);
    if (!exact.ok()) return exact.status();
    wanted += exact->size();
    for (std::size_t i = 0; i < efs.size(); ++i) {
      auto approx = NearestIds(q, k, std::max(efs[i], k));
      if (!approx.ok()) return approx.status();
      for (const auto& e : *exact) found[i] += std::count(approx->begin(), approx->end(), e);
    }
  }
  std::vector<RecallProbe> out;
  for (std::size_t i = 0; i < efs.size(); ++i) {
    RecallProbe p;
    p.queries = sample->size();
    p.k = k;
    p.ef = efs[i];
    p.recall = wanted ? static_cast<double>(found[i]) / static_cast<double>(wanted) : 1.0;
    out.push_back(p);
  }
  return out;
}

void CacheCounters::CountLife(std::int64_t now, std::int64_t expires_ms, std::int64_t ttl_ms) {
  if (ttl_ms <= 0 || expires_ms <= 0) return;
  const double used = 1.0 - static_cast<double>(expires_ms - now) / static_cast<double>(ttl_ms);
  const auto bucket = static_cast<std::size_t>(
      std::clamp(used * static_cast<double>(kLifeBuckets), 0.0, kLifeBuckets - 1.0));
  hits_by_life[bucket].fetch_add(1, std::memory_order_relaxed);
}

void CacheCounters::CountTime(double lookup_us, double embed_us) {
  timed_lookups.fetch_add(1, std::memory_order_relaxed);
  lookup_micros.fetch_add(static_cast<std::uint64_t>(lookup_us + 0.5), std::memory_order_relaxed);
  embed_micros.fetch_add(static_cast<std::uint64_t>(embed_us + 0.5), std::memory_order_relaxed);
}

void CacheCounters::Fill(CacheStats* s) const {
  s->lookups = lookups.load();
  s->exact_hits = exact_hits.load();
  s->semantic_hits = semantic_hits.load();
  s->misses = misses.load();
  s->guard_rejections = guard_rejections.load();
  s->stores = stores.load();
  s->expired = expired.load();
  s->deleted = deleted.load();
  s->evicted = evicted.load();
  s->tokens_saved = tokens_saved.load();
  s->cost_saved_usd = static_cast<double>(cost_saved_nano_usd.load()) / 1e9;
  s->latency_saved_seconds = static_cast<double>(latency_saved_micros.load()) / 1e6;
  s->feedback_correct = feedback_correct.load();
  s->feedback_wrong = feedback_wrong.load();
  for (std::size_t b = 0; b < kLifeBuckets; ++b) s->hits_by_life[b] = hits_by_life[b].load();
  s->timed_lookups = timed_lookups.load();
  s->lookup_seconds = static_cast<double>(lookup_micros.load()) / 1e6;
  s->embed_seconds = static_cast<double>(embed_micros.load()) / 1e6;
  for (std::size_t r = 0; r < kWithheldReasons; ++r)
    for (std::size_t t = 0; t < 2; ++t) s->withheld[r][t] = withheld[r][t].load();
  for (std::size_t t = 0; t < 2; ++t) {
    for (std::size_t b = 0; b < kSimilarityBuckets; ++b) {
      s->agreements[t][b] = agreements[t][b].load();
      s->disagreements[t][b] = disagreements[t][b].load();
    }
  }
}

const char* WithheldName(Withheld w) { return w == Withheld::kShadow ? "shadow" : "verify"; }

std::size_t SimilarityBucket(float similarity) {
  if (!(similarity >= 0.5f)) return 0;
  return std::min<std::size_t>(kSimilarityBuckets - 1,
                               1 + static_cast<std::size_t>((similarity - 0.5f) / 0.05f + 1e-4f));
}

const char* SimilarityBucketName(std::size_t bucket) {
  static constexpr const char* kNames[kSimilarityBuckets] = {
      "<0.50", "0.50", "0.55", "0.60", "0.65", "0.70", "0.75", "0.80", "0.85", "0.90", "0.95"};
  return kNames[std::min(bucket, kSimilarityBuckets - 1)];
}

namespace {

char* PutField(char* out, std::string_view s) {
  const auto n = static_cast<std::uint32_t>(s.size());
  std::memcpy(out, &n, sizeof n);
  std::memcpy(out + sizeof n, s.data(), s.size());
  return out + sizeof n + s.size();
}

}  // namespace

EntryTextRef EntryText::Make(std::string_view prompt, std::string_view response,
                             const Attributes& attributes) {
  std::size_t size = prompt.size() + response.size();
  for (const auto& [k, v] : attributes) size += 2 * sizeof(std::uint32_t) + k.size() + v.size();
  void* block = ::operator new(sizeof(EntryText) + size);
  auto* t = new (block)
      EntryText(static_cast<std::uint32_t>(size), static_cast<std::uint32_t>(prompt.size()),
                static_cast<std::uint32_t>(response.size()));
  char* out = static_cast<char*>(block) + sizeof(EntryText);
  if (!prompt.empty()) std::memcpy(out, prompt.data(), prompt.size());
  out += prompt.size();
  if (!response.empty()) std::memcpy(out, response.data(), response.size());
  out += response.size();
  for (const auto& [k, v] : attributes) {
    out = PutField(out, k);
    out = PutField(out, v);
  }
  return EntryTextRef(t);
}

void intrusive_ptr_add_ref(const EntryText* t) { t->refs_.fetch_add(1, std::memory_order_relaxed); }

void intrusive_ptr_release(const EntryText* t) {
  if (t->refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    t->~EntryText();
    ::operator delete(const_cast<EntryText*>(t));
  }
}

std::string_view EntryText::Field(std::size_t* at) const {
  std::uint32_t n = 0;
  std::memcpy(&n, data() + *at, sizeof n);
  std::string_view out(data() + *at + sizeof n, n);
  *at += sizeof n + n;
  return out;
}

Attributes EntryText::attributes() const {
  Attributes out;
  ForEachAttribute([&](std::string_view k, std::string_view v) { out.emplace(k, v); });
  return out;
}

std::optional<std::string_view> EntryText::attribute(std::string_view name) const {
  std::optional<std::string_view> found;
  ForEachAttribute([&](std::string_view k, std::string_view v) {
    if (k == name) found = v;
  });
  return found;
}

bool EntryText::HasAll(const Attributes& scope) const {
  for (const auto& [k, v] : scope) {
    auto have = attribute(k);
    if (!have || *have != v) return false;
  }
  return true;
}

std::size_t EntryText::text_bytes() const {
  std::size_t b = std::size_t{prompt_size_} + response_size_;
  ForEachAttribute([&](std::string_view k, std::string_view v) { b += k.size() + v.size(); });
  return b;
}

std::uint64_t EstimateTokens(std::string_view text) {
  return std::max<std::uint64_t>(1, (text.size() + 3) / 4);
}

}  // namespace semcached::cache
