// The one semantic tail (Cache::Search): a backend hands over ranked candidates and records
// uses; Search alone applies the threshold, the scope, expiry and the guards, and chooses.
// A backend here is a table of candidates, so each rule is seen on its own.
#include <map>

#include <gtest/gtest.h>

#include <vector>

#include "cache/cache.h"
#include "common/hash.h"

namespace semcached::cache {
namespace {

class TableBackend final : public Cache {
 public:
  std::vector<Candidate> exact, semantic;
  std::vector<std::string> used;  // ids RecordUse was told of
  float load_floor_seen = -1;
  std::int64_t now = 1'000'000;

  TableBackend() { options_.id = "t"; }

  Result<std::string> Store(const std::string&, const std::string&, const Attributes&,
                            std::optional<std::int64_t>) override {
    return Internal("not used");
  }
  std::map<std::string, Candidate> by_id;                             // what EntryById finds
  std::map<std::pair<std::string, std::string>, float> similarities;  // PromptSimilarity's table
  std::vector<std::string> deleted;
  Status Delete(const std::string& id) override {
    deleted.push_back(id);
    return by_id.erase(id) ? Status::Ok() : NotFound("no entry " + id);
  }
  Result<std::size_t> DeleteByAttributes(const Attributes&) override { return std::size_t{0}; }
  Status Flush() override { return Status::Ok(); }
  std::size_t Sweep() override { return 0; }
  CacheStats Stats() const override {
    CacheStats s;
    counters_.Fill(&s);
    s.entries = vectors.size();
    return s;
  }
  std::map<std::string, std::vector<float>> vectors;  // what the clusters are fitted on
  const CacheOptions& options() const override { return options_; }
  const char* store_name() const override { return "table"; }
  CacheOptions options_;

 protected:
  Result<std::vector<Candidate>> ExactCandidates(const std::string&, const SearchQuery&,
                                                 LookupTrace&) override {
    return exact;
  }
  Result<std::vector<Candidate>> SemanticCandidates(const std::string&, float load_floor,
                                                    const SearchQuery&, std::int64_t,
                                                    LookupTrace&) override {
    load_floor_seen = load_floor;
    return semantic;
  }
  void RecordUse(const Candidate& chosen, std::int64_t) override { used.push_back(chosen.id); }
  std::int64_t NowMs() const override { return now; }
  Result<Candidate> EntryById(const std::string& id) override {
    auto it = by_id.find(id);
    if (it == by_id.end()) return NotFound("no entry " + id);
    return it->second;
  }
  Result<std::vector<std::vector<float>>> SampleVectors(std::size_t n) override {
    std::vector<std::vector<float>> out;
    for (const auto& [id, v] : vectors)
      if (out.size() < n) out.push_back(v);
    return out;
  }
  Result<std::vector<float>> EntryVector(const std::string& id) override {
    auto it = vectors.find(id);
    if (it == vectors.end()) return NotFound("no vector for " + id);
    return it->second;
  }
  Result<float> PromptSimilarity(const std::string& a, const std::string& b) override {
    auto it = similarities.find({a, b});
    if (it == similarities.end()) return Internal("no similarity for " + a + " / " + b);
    return it->second;
  }
};

Candidate Make(const std::string& id, const std::string& prompt, float similarity,
               Attributes attributes = {}, std::int64_t expires_ms = 0) {
  Candidate c;
  c.id = id;
  c.entry = EntryText::Make(prompt, "answer of " + id, attributes);
  c.similarity = similarity;
  c.expires_ms = expires_ms;
  return c;
}

SearchQuery Query(const std::string& prompt, Attributes scope = {}) {
  SearchQuery q;
  q.prompt = prompt;
  q.attributes = std::move(scope);
  q.strategies = {Strategy::kSemantic};
  return q;
}

TEST(CacheSearch, TheBestCandidateAtOrAboveTheThresholdWinsAndItsUseIsRecorded) {
  TableBackend b;
  b.semantic = {Make("a", "how do I reset my password", 0.95f),
                Make("b", "how can I reset the password", 0.90f)};
  auto hits = b.Search(Query("how do i reset my password please"));
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].id, "a");
  EXPECT_EQ((*hits)[0].strategy, Strategy::kSemantic);
  EXPECT_FLOAT_EQ((*hits)[0].similarity, 0.95f);
  EXPECT_EQ(b.used, std::vector<std::string>{"a"});
  EXPECT_FLOAT_EQ(b.load_floor_seen, 0.85f);  // the cache's threshold, for backends to prune
}

TEST(CacheSearch, BelowTheThresholdIsAMissButStillTheBestSimilaritySeen) {
  TableBackend b;
  b.semantic = {Make("a", "what is a good name for a puppy", 0.80f)};
  LookupTrace t;
  auto hits = b.Search(Query("what is a good name for a kitten"), &t);
  ASSERT_TRUE(hits.ok());
  EXPECT_TRUE(hits->empty());
  EXPECT_TRUE(b.used.empty());
  EXPECT_FLOAT_EQ(t.best_similarity, 0.80f);
  EXPECT_EQ(b.Stats().misses, 1u);
  SearchQuery looser = Query("what is a good name for a kitten");
  looser.threshold = 0.75f;
  EXPECT_EQ(b.Search(looser)->size(), 1u);
}

TEST(CacheSearch, ARequestMayTightenTheThresholdButNotGoBelowTheFloor) {
  TableBackend b;
  b.options_.similarity_threshold = 0.9f;
  b.options_.min_similarity_threshold = 0.85f;
  b.semantic = {Make("a", "what is a good name for a puppy", 0.80f)};
  SearchQuery looser = Query("what is a good name for a kitten");
  looser.threshold = 0.5f;  // below the floor: the floor applies
  EXPECT_TRUE(b.Search(looser)->empty());
  b.semantic = {Make("a", "what is a good name for a puppy", 0.87f)};
  EXPECT_EQ(b.Search(looser)->size(), 1u);  // at or above the floor
  SearchQuery stricter = looser;
  stricter.threshold = 0.95f;
  EXPECT_TRUE(b.Search(stricter)->empty());
}

TEST(CacheSearch, ScopeExpiryAndUnloadedCandidatesAreSkipped) {
  TableBackend b;
  Candidate unloaded;
  unloaded.id = "u";
  unloaded.similarity = 0.99f;
  b.semantic = {unloaded,
                Make("expired", "book a table for two", 0.98f, {{"user", "x"}}, b.now - 1),
                Make("other-user", "book a table for two", 0.97f, {{"user", "y"}}),
                Make("right", "book a table for two people", 0.96f, {{"user", "x"}})};
  auto hits = b.Search(Query("book a table for two", {{"user", "x"}}));
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].id, "right");
}

TEST(CacheSearch, GuardsRefuseNearMissesAndAreCounted) {
  TableBackend b;
  b.semantic = {Make("neg", "is the pool not heated", 0.97f),
                Make("num", "is the pool heated to 30 degrees", 0.96f),
                Make("ok", "is the swimming pool heated", 0.90f)};
  LookupTrace t;
  auto hits = b.Search(Query("is the pool heated"), &t);
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].id, "ok");
  EXPECT_EQ(t.guard_rejections, 2);
  EXPECT_EQ(b.Stats().guard_rejections, 2u);
}

TEST(CacheSearch, ExactCandidatesMustBeLiveInScopeAndOfTheSameNormalizedPrompt) {
  TableBackend b;
  Candidate stale = Make("stale", "Hello there", 1.0f, {}, b.now);  // expires now: gone
  Candidate other_text = Make("collision", "Hello there", 1.0f);
  other_text.normalized = "something else";  // a backend that keeps the text confirms with it
  Candidate scoped = Make("scoped", "Hello there", 1.0f, {{"lang", "fr"}});
  Candidate good = Make("good", "Hello there", 1.0f, {{"lang", "en"}});
  good.normalized = "hello there";
  b.exact = {stale, other_text, scoped, good};
  SearchQuery q = Query("Hello there!", {{"lang", "en"}});
  q.strategies = {Strategy::kExact};
  auto hits = b.Search(q);
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].id, "good");
  EXPECT_EQ((*hits)[0].strategy, Strategy::kExact);
  EXPECT_EQ(b.Stats().exact_hits, 1u);
}

TEST(CacheSearch, TiersRunInTheOrderAsked) {
  TableBackend b;
  b.exact = {Make("e", "same words", 1.0f)};
  b.semantic = {Make("s", "same words", 0.99f)};
  SearchQuery q = Query("same words");
  q.strategies = {Strategy::kSemantic, Strategy::kExact};
  EXPECT_EQ(b.Search(q)->at(0).id, "s");
  q.strategies = {Strategy::kExact, Strategy::kSemantic};
  EXPECT_EQ(b.Search(q)->at(0).id, "e");
}

TEST(CacheFeedback, LabelsFeedTheTuningReport) {
  TableBackend b;
  b.by_id["e1"] = Make("e1", "How do I reset my router?", 1);
  b.similarities[{"how can i reset my router", "how do i reset my router"}] = 0.93f;
  b.similarities[{"how do i reset my modem", "how do i reset my router"}] = 0.91f;
  b.similarities[{"how do i reset 2 routers", "how do i reset my router"}] = 0.88f;

  auto right = b.RecordFeedback("e1", {"How can I reset my router?", true, {}});
  ASSERT_TRUE(right.ok()) << right.status().ToString();
  EXPECT_FLOAT_EQ(right->similarity, 0.93f);
  EXPECT_FALSE(right->refused_by_guards);
  EXPECT_FALSE(right->deleted);
  auto wrong = b.RecordFeedback("e1", {"How do I reset my modem?", false, {}});
  ASSERT_TRUE(wrong.ok());
  EXPECT_FALSE(wrong->deleted);  // the cache keeps what is reported wrong unless told not to
  // The guards would have refused this one (a number in one prompt only): it never counts
  // as served.
  auto refused = b.RecordFeedback("e1", {"How do I reset 2 routers?", false, {}});
  ASSERT_TRUE(refused.ok());
  EXPECT_TRUE(refused->refused_by_guards);
  // The stored wording itself is the exact tier's: similarity 1.
  auto same = b.RecordFeedback("e1", {"how do I reset my router", true, {}});
  ASSERT_TRUE(same.ok());
  EXPECT_FLOAT_EQ(same->similarity, 1.0f);

  EXPECT_EQ(b.Stats().feedback_correct, 2u);
  EXPECT_EQ(b.Stats().feedback_wrong, 2u);
  const TuningReport r = b.Tuning(0.0);
  EXPECT_EQ(r.same, 2u);
  EXPECT_EQ(r.different, 2u);
  EXPECT_EQ(r.refused_different, 1u);
  ASSERT_TRUE(r.recommended.has_value());
  EXPECT_NEAR(r.recommended->threshold, 0.911f, 1e-6);  // just above the wrong 0.91
  EXPECT_EQ(r.recommended->hits, 2u);
}

TEST(CacheFeedback, UnknownEntriesBadPromptsAndDeletion) {
  TableBackend b;
  b.by_id["e1"] = Make("e1", "Is the pool heated?", 1);
  b.similarities[{"is the pool warm", "is the pool heated"}] = 0.9f;
  auto unknown = b.RecordFeedback("nope", {"Is the pool heated?", true, {}});
  EXPECT_EQ(unknown.status().code(), ErrorCode::kNotFound);
  auto empty = b.RecordFeedback("e1", {"  ", true, {}});
  EXPECT_EQ(empty.status().code(), ErrorCode::kInvalidArgument);
  auto invalid = b.RecordFeedback("e1", {"caf\xC3", true, {}});
  EXPECT_EQ(invalid.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(b.Stats().feedback_correct + b.Stats().feedback_wrong, 0u);  // nothing recorded
  b.options_.feedback_deletes_wrong = true;
  auto wrong = b.RecordFeedback("e1", {"Is the pool warm?", false, {}});
  ASSERT_TRUE(wrong.ok());
  EXPECT_TRUE(wrong->deleted);
  EXPECT_EQ(b.deleted, std::vector<std::string>{"e1"});
  EXPECT_EQ(b.RecordFeedback("e1", {"Is the pool warm?", false, {}}).status().code(),
            ErrorCode::kNotFound);
}

TEST(CacheShadow, ShadowModeFindsTheHitAndServesNothing) {
  TableBackend b;
  b.options_.similarity_threshold = 0.8f;
  b.semantic = {Make("s1", "how do i reset my router", 0.9f)};
  b.options_.shadow = true;
  LookupTrace t;
  auto hits = b.Search(Query("how can i reset my router"), &t);
  ASSERT_TRUE(hits.ok());
  EXPECT_TRUE(hits->empty());
  ASSERT_TRUE(t.withheld.has_value());
  EXPECT_EQ(t.withheld->id, "s1");
  EXPECT_EQ(t.withheld_reason, Withheld::kShadow);
  EXPECT_FALSE(t.hit_tier.has_value());
  EXPECT_TRUE(b.used.empty());  // nothing served: no use recorded
  auto st = b.Stats();
  EXPECT_EQ(st.semantic_hits + st.misses, 0u);
  EXPECT_EQ(st.withheld[static_cast<std::size_t>(Withheld::kShadow)][1], 1u);
  // A request may ask for the same on a serving cache.
  b.options_.shadow = false;
  SearchQuery q = Query("how can i reset my router");
  q.shadow = true;
  LookupTrace t2;
  EXPECT_TRUE(b.Search(q, &t2)->empty());
  EXPECT_TRUE(t2.withheld.has_value());
  EXPECT_EQ(b.Search(Query("how can i reset my router"))->size(), 1u);
}

TEST(CacheShadow, VerificationHoldsBackHitsNearTheThresholdForCallersThatCanVerify) {
  TableBackend b;
  b.options_.similarity_threshold = 0.8f;
  b.options_.verify_band = 0.05f;
  b.semantic = {Make("near", "how do i reset my router", 0.82f)};
  SearchQuery q = Query("how can i reset my router");
  EXPECT_EQ(b.Search(q)->size(), 1u);  // a caller that cannot ask the model is served
  q.can_verify = true;
  LookupTrace t;
  EXPECT_TRUE(b.Search(q, &t)->empty());
  ASSERT_TRUE(t.withheld.has_value());
  EXPECT_EQ(t.withheld_reason, Withheld::kVerify);
  b.semantic = {Make("far", "how do i reset my router", 0.9f)};  // above the band: served
  EXPECT_EQ(b.Search(q)->size(), 1u);
  b.options_.verify_fraction = 1;  // every semantic hit
  EXPECT_TRUE(b.Search(q)->empty());
  // Exact hits are never held back for verification.
  b.exact = {Make("e", "how can i reset my router", 1)};
  SearchQuery exact = q;
  exact.strategies = {Strategy::kExact};
  EXPECT_EQ(b.Search(exact)->size(), 1u);
  EXPECT_EQ(b.Stats().withheld[static_cast<std::size_t>(Withheld::kVerify)][1], 2u);
}

TEST(CacheShadow, AnswerComparisonsLabelTheWithheldHit) {
  TableBackend b;
  b.similarities[{"we open at 9 on saturdays", "on saturdays we open at 9"}] = 0.95f;
  b.similarities[{"we open at 9 on saturdays", "we are closed on sundays"}] = 0.6f;
  Hit h{"e1", EntryText::Make("What time do you open on Saturday?", "x"), 0.87f,
        Strategy::kSemantic};
  EXPECT_TRUE(
      *b.RecordAnswerComparison(h, "We open at 9 on Saturdays.", " We open at 9 on Saturdays. "));
  EXPECT_TRUE(
      *b.RecordAnswerComparison(h, "We open at 9 on Saturdays.", "On Saturdays we open at 9."));
  EXPECT_FALSE(
      *b.RecordAnswerComparison(h, "We open at 9 on Saturdays.", "We are closed on Sundays."));
  const auto st = b.Stats();
  EXPECT_EQ(st.agreements[1][SimilarityBucket(0.87f)], 2u);
  EXPECT_EQ(st.disagreements[1][SimilarityBucket(0.87f)], 1u);
  EXPECT_STREQ(SimilarityBucketName(SimilarityBucket(0.87f)), "0.85");
  EXPECT_STREQ(SimilarityBucketName(SimilarityBucket(1.0f)), "0.95");
  EXPECT_STREQ(SimilarityBucketName(SimilarityBucket(0.2f)), "<0.50");
  const TuningReport r = b.Tuning(0.5);
  EXPECT_EQ(r.same, 2u);
  EXPECT_EQ(r.different, 1u);
}

TEST(CacheAdaptive, AHitIsServedOnceItsLabelsBoundTheErrorRate) {
  TableBackend b;
  b.options_.similarity_threshold = 0.8f;  // a floor now
  b.options_.max_error_rate = 0.02;
  b.semantic = {Make("s1", "how do i reset my router", 0.9f)};
  b.similarities[{"hold reset for 10 s", "hold reset for 10 s"}] = 1;
  SearchQuery q = Query("how can i reset my router");
  q.can_verify = true;
  LookupTrace t;
  EXPECT_TRUE(b.Search(q, &t)->empty());  // nothing known yet: withheld for verification
  ASSERT_TRUE(t.withheld.has_value());
  EXPECT_EQ(t.withheld_reason, Withheld::kVerify);
  // Verified right 148 times at 0.88 (the upper 95% bound of Beta(1, 149) is under 2%).
  Hit labelled{"s1", EntryText::Make("how do i reset my router", "x"), 0.88f, Strategy::kSemantic};
  for (int i = 0; i < 147; ++i) ASSERT_TRUE(*b.RecordAnswerComparison(labelled, "same", "same"));
  EXPECT_TRUE(b.Search(q)->empty());
  ASSERT_TRUE(*b.RecordAnswerComparison(labelled, "same", "same"));
  auto served = b.Search(q);
  ASSERT_EQ(served->size(), 1u);
  EXPECT_EQ((*served)[0].id, "s1");
  // Another entry, below every label: nothing is known of hits there.
  b.semantic = {Make("s2", "how do i reset my modem", 0.85f)};
  EXPECT_TRUE(b.Search(q)->empty());
  // Exact hits are not subject to it.
  b.exact = {Make("e", "how can i reset my router", 1)};
  SearchQuery exact = q;
  exact.strategies = {Strategy::kExact};
  EXPECT_EQ(b.Search(exact)->size(), 1u);
}

ExperimentOptions TwoArms() {
  ExperimentOptions e;
  e.split_attribute = "user";
  e.arms = {{"strict", 0.92f, 0, 1}, {"loose", 0.85f, 0, 1}};
  return e;
}

// A user the split sends to arm `want` of TwoArms() in the cache "t".
std::string UserIn(std::size_t want) {
  for (int i = 0;; ++i) {
    std::string user = "user-" + std::to_string(i);
    if (ArmFor(TwoArms().arms, user, Fnv1a64("t")) == want) return user;
  }
}

// The split attribute is also a scope (as every search attribute): the entries carry it.
TEST(CacheExperiment, EachRequestIsServedByItsArmAndCountedThere) {
  TableBackend b;
  b.SetExperiment(TwoArms());
  const std::string strict_user = UserIn(0), loose_user = UserIn(1);
  b.semantic = {Make("s1", "how do i reset my router", 0.88f, {{"user", strict_user}}),
                Make("s2", "how do i reset my router", 0.88f, {{"user", loose_user}})};
  const std::string& strict = strict_user;
  const std::string& loose = loose_user;
  // 0.88 is below the strict arm's 0.92 and above the loose arm's 0.85.
  for (int i = 0; i < 3; ++i) {
    LookupTrace t;
    EXPECT_TRUE(b.Search(Query("how can i reset my router", {{"user", strict}}), &t)->empty());
    EXPECT_EQ(t.arm, 0);
    EXPECT_EQ(t.arm_name, "strict");
  }
  LookupTrace t;
  auto hit = b.Search(Query("how can i reset my router", {{"user", loose}}), &t);
  ASSERT_EQ(hit->size(), 1u);
  EXPECT_EQ(t.arm_name, "loose");
  EXPECT_EQ((*hit)[0].arm, 1);
  // A key the caller names wins over the attribute.
  SearchQuery named = Query("how can i reset my router", {{"user", strict}});
  named.split_key = loose;
  auto by_key = b.Search(named);
  ASSERT_EQ(by_key->size(), 1u);
  EXPECT_EQ((*by_key)[0].id, "s1");
  // No key, or a threshold of the request's own: in no arm, the cache's threshold (0.85).
  LookupTrace none;
  EXPECT_EQ(b.Search(Query("how can i reset my router"), &none)->size(), 1u);
  EXPECT_EQ(none.arm, -1);
  SearchQuery own = Query("how can i reset my router", {{"user", strict}});
  own.threshold = 0.8f;
  LookupTrace own_trace;
  EXPECT_EQ(b.Search(own, &own_trace)->size(), 1u);
  EXPECT_EQ(own_trace.arm, -1);

  // Feedback and verification count to the arm of the request they are about.
  b.by_id["s2"] = Make("s2", "how do i reset my router", 1, {{"user", loose}});
  b.by_id["s1"] = Make("s1", "how do i reset my router", 1, {{"user", strict}});
  b.similarities[{"how can i reset my router", "how do i reset my router"}] = 0.88f;
  ASSERT_TRUE(
      b.RecordFeedback("s2", {"How can I reset my router?", false, {{"user", loose}}, ""}).ok());
  ASSERT_TRUE(b.RecordFeedback("s1", {"How can I reset my router?", true, {}, strict}).ok());
  b.similarities[{"unplug it", "call your provider"}] = 0.3f;
  Hit withheld = (*hit)[0];
  ASSERT_FALSE(*b.RecordAnswerComparison(withheld, "Unplug it.", "Call your provider."));
  b.RecordArmLatency(1, 0.004);
  b.RecordSavings(10, 0.25, 1.0, 1);

  const auto e = b.Experiment();
  ASSERT_EQ(e.arms.size(), 2u);
  EXPECT_TRUE(e.winner.empty());
  EXPECT_EQ(e.arms[0].totals.lookups, 3u);
  EXPECT_EQ(e.arms[0].totals.semantic_hits, 0u);
  EXPECT_EQ(e.arms[0].totals.reported_correct, 1u);
  EXPECT_EQ(e.arms[1].totals.lookups, 2u);
  EXPECT_EQ(e.arms[1].totals.semantic_hits, 2u);  // the loose user's, and the named key's
  EXPECT_EQ(e.arms[1].totals.reported_wrong, 1u);
  EXPECT_EQ(e.arms[1].totals.verified, 1u);
  EXPECT_EQ(e.arms[1].totals.verified_wrong, 1u);
  EXPECT_EQ(e.arms[1].totals.timed, 1u);
  EXPECT_GT(e.arms[1].totals.cost_saved_usd, 0.25);  // the caller's figure and the estimates
  EXPECT_DOUBLE_EQ(e.arms[1].hit_rate, 1.0);
  EXPECT_DOUBLE_EQ(e.arms[1].false_hit_rate, 1.0);  // 2 false hits of 2 lookups
  EXPECT_EQ(b.Stats().lookups, 7u);                 // the cache counts every lookup as ever
}

TEST(CacheExperiment, EndingWithAWinnerMakesItsSettingTheCachesAndKeepsTheCounts) {
  TableBackend b;
  EXPECT_EQ(b.EndExperiment("loose").status().code(), ErrorCode::kFailedPrecondition);
  b.SetExperiment(TwoArms());
  b.semantic = {Make("s1", "how do i reset my router", 0.88f)};
  SearchQuery strict = Query("how can i reset my router");
  strict.split_key = UserIn(0);
  EXPECT_TRUE(b.Search(strict)->empty());
  EXPECT_EQ(b.EndExperiment("nobody").status().code(), ErrorCode::kNotFound);
  auto won = b.EndExperiment("strict");
  ASSERT_TRUE(won.ok());
  EXPECT_FLOAT_EQ(won->threshold, 0.92f);
  EXPECT_FLOAT_EQ(b.Policy().threshold, 0.92f);
  // Every request now has the winner's threshold, and none is in an arm.
  LookupTrace t;
  EXPECT_TRUE(b.Search(Query("how can i reset my router"), &t)->empty());
  EXPECT_EQ(t.arm, -1);
  EXPECT_FLOAT_EQ(b.load_floor_seen, 0.92f);
  const auto e = b.Experiment();
  EXPECT_EQ(e.winner, "strict");
  EXPECT_EQ(e.arms[0].totals.lookups, 1u);
  EXPECT_EQ(b.EndExperiment("strict").status().code(), ErrorCode::kFailedPrecondition);
  // A new experiment starts from the settled policy for requests in no arm.
  b.SetExperiment(TwoArms());
  EXPECT_FLOAT_EQ(b.Policy().threshold, 0.92f);
  EXPECT_EQ(b.Experiment().arms[0].totals.lookups, 0u);
}

TEST(CacheExperiment, AnAdaptiveArmWithholdsWhatItCannotBoundAndTheStaticArmServes) {
  TableBackend b;
  ExperimentOptions e;
  e.split_attribute = "user";
  e.arms = {{"strict", 0.92f, 0, 1}, {"loose", 0.85f, 0, 1}};
  e.arms[1].max_error_rate = 0.02;
  b.SetExperiment(e);
  b.semantic = {Make("s1", "how do i reset my router", 0.95f)};
  SearchQuery adaptive = Query("how can i reset my router");
  adaptive.split_key = UserIn(1);
  adaptive.can_verify = true;
  LookupTrace t;
  EXPECT_TRUE(b.Search(adaptive, &t)->empty());  // no labels yet
  EXPECT_EQ(t.withheld_reason, Withheld::kVerify);
  EXPECT_EQ(b.Experiment().arms[1].totals.withheld, 1u);
  SearchQuery fixed = Query("how can i reset my router");
  fixed.split_key = UserIn(0);
  fixed.can_verify = true;
  EXPECT_EQ(b.Search(fixed)->size(), 1u);
}

std::vector<float> Axis(std::size_t i) {
  std::vector<float> v(8, 0);
  v[i] = 1;
  return v;
}

// Whether a would-be hit on `id` at `similarity` is served by an adaptive cache.
bool Served(TableBackend& b, const std::string& id, float similarity) {
  b.semantic = {Make(id, "the stored question", similarity)};
  SearchQuery q = Query("the asked question");
  q.can_verify = true;
  return b.Search(q)->size() == 1;
}

TEST(CacheClusters, ANeighbourhoodsLabelsAreThePriorOfItsEntriesAndAMovedOneStartsAgain) {
  TableBackend b;
  b.options_.similarity_threshold = 0.8f;
  b.options_.max_error_rate = 0.02;
  b.similarities[{"yes", "no"}] = 0.1f;
  for (int i = 0; i < 100; ++i) {
    b.vectors["a" + std::to_string(i)] = Axis(0);
    b.vectors["b" + std::to_string(i)] = Axis(1);
  }
  EXPECT_TRUE(b.Clusters().clusters.empty());
  // Hits at 0.9 on the first half of the A entries were right 600 times; on B entries wrong
  // 30 times in 300.
  auto label = [&b](const std::string& id, bool right) {
    Hit h{id, EntryText::Make("the stored question", "x"), 0.9f, Strategy::kSemantic};
    ASSERT_EQ(*b.RecordAnswerComparison(h, "yes", right ? "yes" : "no"), right);
  };
  for (int i = 0; i < 600; ++i) label("a" + std::to_string(i % 50), true);
  for (int i = 0; i < 300; ++i) label("b" + std::to_string(i % 50), i % 10 != 0);
  // The cache's curve alone puts a hit at 0.9 at 3.4% wrong: an A entry without labels of its
  // own is not served.
  EXPECT_FALSE(Served(b, "a99", 0.9f));

  ASSERT_TRUE(b.MaintainClusters().ok());
  auto state = b.Clusters();
  ASSERT_EQ(state.clusters.size(), 2u);  // two distinct vectors: two clusters
  EXPECT_EQ(state.refits, 1u);
  EXPECT_EQ(state.fitted_entries, 200u);
  std::multiset<std::size_t> labels;
  for (const auto& c : state.clusters) labels.insert(c.labels);
  EXPECT_EQ(labels, (std::multiset<std::size_t>{300, 600}));
  // A's labels bound a hit's error within 2% from some similarity on; B's at none.
  auto with_threshold = [](const Cache::ClusterState& st) {
    std::vector<float> out;
    for (const auto& c : st.clusters)
      if (c.threshold) out.push_back(*c.threshold);
    return out;
  };
  ASSERT_EQ(with_threshold(state).size(), 1u);
  EXPECT_LE(with_threshold(state)[0], 0.9f);
  // Its cluster's labels say hits there are right: served. B's say the opposite.
  EXPECT_TRUE(Served(b, "a99", 0.9f));
  EXPECT_FALSE(Served(b, "b99", 0.9f));
  // Nothing changed: no refit is due.
  ASSERT_TRUE(b.MaintainClusters().ok());
  EXPECT_EQ(b.Clusters().refits, 1u);

  // The A entries move elsewhere and new entries arrive (half as many again): at the refit
  // the A cluster matches nothing before it, and its statistics start again; B keeps its.
  for (int i = 0; i < 100; ++i) {
    b.vectors["a" + std::to_string(i)] = Axis(2);
    b.vectors["c" + std::to_string(i)] = Axis(3);
  }
  ASSERT_TRUE(b.MaintainClusters().ok());
  state = b.Clusters();
  EXPECT_EQ(state.refits, 2u);
  EXPECT_EQ(state.clusters.size(), 3u);
  EXPECT_EQ(state.resets, 2u);  // A's new place and C's, both unlike any cluster before
  labels.clear();
  for (const auto& c : state.clusters) labels.insert(c.labels);
  EXPECT_EQ(labels, (std::multiset<std::size_t>{0, 0, 300}));
  EXPECT_TRUE(with_threshold(state).empty());
}

}  // namespace
}  // namespace semcached::cache
