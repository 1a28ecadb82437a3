#include "cache/tuning.h"

#include <sstream>

#include <gtest/gtest.h>

#include "common/csv_record.h"

namespace semcached::cache {
namespace {

// Ten rewordings at 0.90..0.99 (one refused by the guards) and ten different questions at
// 0.50..0.95 in steps of 0.05.
std::vector<LabelledLookup> Lookups() {
  std::vector<LabelledLookup> out;
  for (int i = 0; i < 10; ++i) out.push_back({0.90f + 0.01f * static_cast<float>(i), i == 9, true});
  for (int i = 0; i < 10; ++i) out.push_back({0.50f + 0.05f * static_cast<float>(i), false, false});
  return out;
}

TEST(Tuning, EachThresholdCountsWhatItWouldServe) {
  const TuningReport r = WhatIf(Lookups(), 0.1);
  EXPECT_EQ(r.same, 10u);
  EXPECT_EQ(r.different, 10u);
  EXPECT_EQ(r.refused_same, 1u);
  EXPECT_EQ(r.refused_different, 0u);
  ASSERT_EQ(r.rows.size(), 51u);  // 0.50, 0.51, ..., 1.00
  const ThresholdRow& at90 = r.rows[40];
  EXPECT_FLOAT_EQ(at90.threshold, 0.90f);
  EXPECT_EQ(at90.hits, 9u);        // the refused one never counts
  EXPECT_EQ(at90.false_hits, 2u);  // 0.90 and 0.95
  EXPECT_DOUBLE_EQ(at90.hit_rate, 0.9);
  EXPECT_DOUBLE_EQ(at90.false_hit_rate, 0.2);
  EXPECT_DOUBLE_EQ(at90.precision, 9.0 / 11.0);
  const ThresholdRow& at100 = r.rows.back();
  EXPECT_EQ(at100.hits + at100.false_hits, 0u);
  EXPECT_DOUBLE_EQ(at100.precision, 1.0);
}

TEST(Tuning, RecommendsTheLowestThresholdWithinTheTarget) {
  // 10% of ten different questions: one may be served; the second most similar (0.90) must
  // not: the threshold goes just above it.
  const TuningReport r = WhatIf(Lookups(), 0.1);
  ASSERT_TRUE(r.recommended.has_value());
  EXPECT_NEAR(r.recommended->threshold, 0.901f, 1e-6);
  EXPECT_EQ(r.recommended->false_hits, 1u);
  EXPECT_EQ(r.recommended->hits, 8u);  // 0.91 .. 0.98
  // No false hit at all: above 0.95.
  const TuningReport strict = WhatIf(Lookups(), 0.0);
  ASSERT_TRUE(strict.recommended.has_value());
  EXPECT_NEAR(strict.recommended->threshold, 0.951f, 1e-6);
  EXPECT_EQ(strict.recommended->false_hits, 0u);
  // Everything allowed: the lowest threshold of the range.
  EXPECT_NEAR(WhatIf(Lookups(), 1.0).recommended->threshold, 0.5f, 1e-6);
}

TEST(Tuning, NoThresholdWhenWrongAnswersAreIdentical) {
  std::vector<LabelledLookup> l = {{1.0f, false, false}, {1.0f, false, true}};
  const TuningReport r = WhatIf(l, 0.0);
  EXPECT_FALSE(r.recommended.has_value());
  EXPECT_NE(TuningReportText(r).find("no threshold"), std::string::npos);
  EXPECT_NE(TuningReportJson(r).find("\"recommended\":null"), std::string::npos);
}

TEST(Tuning, AveragePrecisionRanksBySimilarity) {
  // Right, wrong, right by falling similarity: (1/1 + 2/3) / 2.
  std::vector<LabelledLookup> l = {{0.9f, false, true}, {0.8f, false, false}, {0.7f, false, true}};
  EXPECT_NEAR(WhatIf(l, 0.01).average_precision, (1.0 + 2.0 / 3.0) / 2.0, 1e-12);
  // It measures the similarity alone: the guards do not change it.
  l[0].refused_by_guards = true;
  EXPECT_NEAR(WhatIf(l, 0.01).average_precision, (1.0 + 2.0 / 3.0) / 2.0, 1e-12);
}

TEST(Tuning, JsonNamesEveryFigure) {
  const std::string j = TuningReportJson(WhatIf(Lookups(), 0.1));
  for (const char* key : {"\"same\":10", "\"different\":10", "\"refusedByGuards\"",
                          "\"averagePrecision\"", "\"targetFalseHitRate\":0.1000",
                          "\"recommended\":{\"threshold\":0.901", "\"thresholds\":["})
    EXPECT_NE(j.find(key), std::string::npos) << key;
}

TEST(Tuning, TrafficSharesAndTheJsonRoundTrip) {
  TuningReport r = WhatIf(Lookups(), 0.1);
  // Four recent lookups: an exact hit (1), two near ones, one far.
  AddTrafficShares(&r, {1.0f, 0.92f, 0.85f, 0.3f});
  EXPECT_EQ(r.lookups, 4u);
  EXPECT_DOUBLE_EQ(r.rows[0].served_share, 0.75);      // at 0.50
  EXPECT_DOUBLE_EQ(r.rows[40].served_share, 0.5);      // at 0.90
  EXPECT_DOUBLE_EQ(r.rows.back().served_share, 0.25);  // at 1.00: the exact hit
  EXPECT_DOUBLE_EQ(r.recommended->served_share, 0.5);  // at 0.901
  const auto back = TuningReportFromJson(TuningReportJson(r));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->lookups, 4u);
  EXPECT_EQ(back->rows.size(), r.rows.size());
  EXPECT_EQ(back->rows[40].hits, r.rows[40].hits);
  EXPECT_NEAR(back->rows[40].served_share, 0.5, 1e-4);
  EXPECT_NEAR(back->recommended->threshold, 0.901f, 1e-6);
  EXPECT_EQ(TuningReportText(*back), TuningReportText(r));
  EXPECT_FALSE(TuningReportFromJson("{\"same\":1}").has_value());
  EXPECT_FALSE(TuningReportFromJson("not json").has_value());
}

TEST(CsvRecord, QuotedFieldsHoldSeparatorsQuotesAndNewlines) {
  std::istringstream in(
      "question1,question2,is_duplicate\r\n\"Is it \"\"good\"\", or "
      "not?\",\"two\nlines\",1\nlast,,0");
  std::vector<std::string> f;
  ASSERT_TRUE(ReadCsvRecord(in, ',', &f));
  EXPECT_EQ(f, (std::vector<std::string>{"question1", "question2", "is_duplicate"}));
  ASSERT_TRUE(ReadCsvRecord(in, ',', &f));
  EXPECT_EQ(f, (std::vector<std::string>{"Is it \"good\", or not?", "two\nlines", "1"}));
  ASSERT_TRUE(ReadCsvRecord(in, ',', &f));
  EXPECT_EQ(f, (std::vector<std::string>{"last", "", "0"}));
  EXPECT_FALSE(ReadCsvRecord(in, ',', &f));
  std::istringstream tsv("a\tb, still b\t1\n");
  ASSERT_TRUE(ReadCsvRecord(tsv, '\t', &f));
  EXPECT_EQ(f, (std::vector<std::string>{"a", "b, still b", "1"}));
}

}  // namespace
}  // namespace semcached::cache
