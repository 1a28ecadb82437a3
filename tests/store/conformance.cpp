// The conformance tests themselves (see conformance.h).
#include "conformance.h"

#include <algorithm>

namespace semcached::testing {

TEST_P(StoreConformance, FindsEachElementAsItsOwnNearestNeighbour) {
  auto s = Make();
  auto elements = Fill(*s, 300);
  EXPECT_EQ(s->Info()->size, 300u);
  for (std::size_t i = 0; i < 300; i += 15) {
    auto hits = s->Search(elements[i].vector, {.k = 3});
    ASSERT_TRUE(hits.ok()) << hits.status().ToString();
    ASSERT_FALSE(hits->empty());
    EXPECT_EQ((*hits)[0].id, elements[i].id);
    EXPECT_NEAR((*hits)[0].similarity, 1.0, 0.01);
    for (std::size_t j = 1; j < hits->size(); ++j)
      EXPECT_LE((*hits)[j].similarity, (*hits)[j - 1].similarity + 1e-6);
  }
}

TEST_P(StoreConformance, SimilarityIsCosineWhateverTheBackend) {
  auto s = Make(store::Quantization::kNoQuant);
  std::vector<float> a(kDim, 0), b(kDim, 0), c(kDim, 0);
  a[0] = 1;
  b[0] = 0.6f, b[1] = 0.8f;   // cosine 0.6 with a
  c[0] = -0.8f, c[2] = 0.6f;  // cosine -0.8 with a
  ASSERT_TRUE(s->Add({"b", b, ""}).ok());
  ASSERT_TRUE(s->Add({"c", c, ""}).ok());
  auto hits = s->Search(a, {.k = 2, .exact = true});
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 2u);
  EXPECT_EQ((*hits)[0].id, "b");
  EXPECT_NEAR((*hits)[0].similarity, 0.6, 1e-3);
  EXPECT_EQ((*hits)[1].id, "c");
  EXPECT_NEAR((*hits)[1].similarity, -0.8, 1e-3);
}

TEST_P(StoreConformance, ExactSearchEqualsBruteForce) {
  auto s = Make(store::Quantization::kNoQuant);
  auto elements = Fill(*s, 200, 11);
  std::mt19937 rng(99);
  for (int q = 0; q < 5; ++q) {
    auto query = RandomUnit(rng, kDim);
    std::vector<std::pair<double, std::string>> truth;
    for (const auto& e : elements) truth.emplace_back(Cosine(query, e.vector), e.id);
    std::sort(truth.rbegin(), truth.rend());
    auto hits = s->Search(query, {.k = 5, .exact = true});
    ASSERT_TRUE(hits.ok());
    ASSERT_EQ(hits->size(), 5u);
    for (std::size_t i = 0; i < 5; ++i) {
      EXPECT_EQ((*hits)[i].id, truth[i].second);
      EXPECT_NEAR((*hits)[i].similarity, truth[i].first, 1e-3);
    }
  }
}

TEST_P(StoreConformance, RemoveAndReplace) {
  auto s = Make();
  auto elements = Fill(*s, 50);
  auto removed = s->Remove("e10");
  ASSERT_TRUE(removed.ok());
  EXPECT_TRUE(*removed);
  EXPECT_FALSE(*s->Remove("e10"));
  EXPECT_FALSE(*s->Remove("never-there"));
  auto hits = s->Search(elements[10].vector, {.k = 50});
  ASSERT_TRUE(hits.ok());
  for (const auto& h : *hits) EXPECT_NE(h.id, "e10");
  EXPECT_FALSE(s->Vector("e10")->has_value());
  EXPECT_EQ(s->Info()->size, 49u);

  // Adding an existing id replaces its vector and attributes.
  ASSERT_TRUE(s->Add({"e11", elements[20].vector, R"({"user":"carol"})"}).ok());
  EXPECT_EQ(s->Info()->size, 49u);
  auto v = s->Vector("e11");
  ASSERT_TRUE(v.ok() && v->has_value());
  EXPECT_GT(Cosine(**v, elements[20].vector), 0.99);
  EXPECT_EQ(**s->Attributes("e11"), R"({"user":"carol"})");
}

TEST_P(StoreConformance, AttributesAndFilters) {
  auto s = Make();
  auto elements = Fill(*s, 120);
  ASSERT_TRUE(
      s->Add({"plain", elements[0].vector, ""}).ok());  // no attributes: never matches a filter
  auto alice = s->Search(elements[0].vector,
                         {.k = 20, .filter = R"(.user == "alice")", .with_attributes = true});
  ASSERT_TRUE(alice.ok()) << alice.status().ToString();
  ASSERT_FALSE(alice->empty());
  for (const auto& h : *alice) {
    EXPECT_NE(h.id, "plain");
    EXPECT_NE(h.attributes.find(R"("user":"alice")"), std::string::npos)
        << h.id << " " << h.attributes;
  }
  auto mixed =
      s->Search(elements[5].vector, {.k = 200,
                                     .ef = 200,
                                     .filter = R"(.n >= 30 and .n < 40 and .tag in ["a", "b"])",
                                     .filter_ef = 1000,
                                     .exact = true});
  ASSERT_TRUE(mixed.ok()) << mixed.status().ToString();
  std::set<std::string> got;
  for (const auto& h : *mixed) got.insert(h.id);
  std::set<std::string> want;
  for (int n = 30; n < 40; ++n) {
    if (n % 3 != 2) want.insert("e" + std::to_string(n));
  }
  EXPECT_EQ(got, want);
  auto negated =
      s->Search(elements[5].vector,
                {.k = 200, .filter = R"(not (.user == "bob") && .n < 10)", .exact = true});
  ASSERT_TRUE(negated.ok());
  EXPECT_EQ(negated->size(), 5u);  // odd n below 10

  ASSERT_TRUE(s->SetAttributes("e1", R"({"user":"dave"})").ok());
  EXPECT_EQ(**s->Attributes("e1"), R"({"user":"dave"})");
  EXPECT_EQ(s->SetAttributes("missing", "{}").code(), ErrorCode::kNotFound);
  EXPECT_FALSE(s->Attributes("missing")->has_value());
  auto dave = s->Search(elements[1].vector, {.k = 5, .filter = R"(.user == "dave")"});
  ASSERT_TRUE(dave.ok());
  ASSERT_EQ(dave->size(), 1u);
  EXPECT_EQ((*dave)[0].id, "e1");
}

TEST_P(StoreConformance, BadInputIsRefusedAndChangesNothing) {
  auto s = Make();
  Fill(*s, 10);
  std::vector<float> short_vector(kDim - 1, 0.5f);
  std::vector<float> nan_vector(kDim, 0.5f);
  nan_vector[3] = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> inf_vector(kDim, 0.5f);
  inf_vector[0] = std::numeric_limits<float>::infinity();
  std::vector<float> zero(kDim, 0);
  std::vector<float> good(kDim, 0.5f);
  EXPECT_EQ(s->Add({"x", short_vector, ""}).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s->Add({"x", nan_vector, ""}).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s->Add({"x", inf_vector, ""}).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s->Add({"x", zero, ""}).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s->Add({"", good, ""}).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s->Add({"x", good, "[1,2]"}).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s->Add({"x", good, "{not json"}).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s->Info()->size, 10u);
  EXPECT_FALSE(s->Vector("x")->has_value());

  EXPECT_EQ(s->Search(short_vector, {}).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s->Search(nan_vector, {}).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s->Search(good, {.k = 0}).status().code(), ErrorCode::kInvalidArgument);
  for (const char* bad :
       {".user ==", "(.n > 1", ".n > > 2", "user == 1", R"(.s == "open)", "[1, 2"}) {
    auto r = s->Search(good, {.filter = bad});
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find("bad filter"), std::string::npos) << r.status().message();
  }
  EXPECT_EQ(s->SetAttributes("e1", "42").code(), ErrorCode::kInvalidArgument);

  // A batch with bad elements stores the good ones only.
  auto statuses = s->AddBatch({{"ok1", good, ""}, {"bad", nan_vector, ""}, {"ok2", good, "{}"}});
  ASSERT_EQ(statuses.size(), 3u);
  EXPECT_TRUE(statuses[0].ok());
  EXPECT_FALSE(statuses[1].ok());
  EXPECT_TRUE(statuses[2].ok());
  EXPECT_EQ(s->Info()->size, 12u);
}

TEST_P(StoreConformance, BatchOfAThousandAndClear) {
  auto s = Make();
  auto elements = Fill(*s, 1000, 3);
  auto info = s->Info();
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size, 1000u);
  EXPECT_EQ(info->dim, kDim);
  int found = 0;
  for (std::size_t i = 0; i < 1000; i += 50) {
    auto hits = s->Search(elements[i].vector, {.k = 1, .ef = 100});
    found += hits.ok() && !hits->empty() && (*hits)[0].id == elements[i].id;
  }
  EXPECT_GE(found, 19);
  auto v = s->Vector("e999");
  ASSERT_TRUE(v.ok() && v->has_value());
  EXPECT_GT(Cosine(**v, elements[999].vector), 0.99);  // quantized, but close
  ASSERT_TRUE(s->Clear().ok());
  EXPECT_EQ(s->Info()->size, 0u);
  auto none = s->Search(elements[0].vector, {.k = 3});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  EXPECT_TRUE(s->Add(elements[0]).ok());  // usable after a clear
}

}  // namespace semcached::testing
