#include "server/metrics.h"

#include <gtest/gtest.h>

#include "vector/cpu_features.h"

namespace semcached {
namespace {

TEST(Metrics, RendersRequestsAndProcessFigures) {
  server::Metrics m;
  m.SetBuildInfo("1.2.3", "abc", "avx2");
  m.ObserveRequest("/healthz", "GET", 200, 0.0003);
  m.ObserveRequest("/healthz", "GET", 200, 0.002);
  std::string text = m.Render();
  EXPECT_NE(
      text.find(R"(semcached_http_requests_total{method="GET",route="/healthz",status="200"} 2)"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("semcached_http_request_duration_seconds_bucket"), std::string::npos);
  EXPECT_NE(text.find("process_resident_memory_bytes"), std::string::npos);
  EXPECT_NE(text.find("process_cpu_seconds_total"), std::string::npos);
  EXPECT_NE(text.find("process_open_fds"), std::string::npos);
  EXPECT_NE(text.find("semcached_http_open_connections"), std::string::npos);
  EXPECT_NE(text.find(R"(semcached_simd_level{level="avx2"} 1)"), std::string::npos);
}

TEST(Metrics, CountsRequestsWithinTheLatencyObjectivePerRoute) {
  server::Metrics m;
  m.SetLatencyObjective(0.05);
  m.ObserveRequest("/v1/caches/{cacheId}/entries/search", "POST", 200, 0.01);
  m.ObserveRequest("/v1/caches/{cacheId}/entries/search", "POST", 200, 0.05);  // on the line
  m.ObserveRequest("/v1/caches/{cacheId}/entries/search", "POST", 200, 0.2);
  m.ObserveRequest("/v1/caches/{cacheId}/entries/search", "POST", 400, 0.001);
  const std::string text = m.Render();
  EXPECT_NE(
      text.find(
          R"(semcached_http_requests_within_objective_total{route="/v1/caches/{cacheId}/entries/search"} 3)"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("semcached_http_latency_objective_seconds 0.05"), std::string::npos) << text;
  EXPECT_NE(text.find("semcached_http_worker_queue 0"), std::string::npos) << text;
}

TEST(CpuFeatures, LevelsParseAndName) {
  for (auto l :
       {vector::SimdLevel::kScalar, vector::SimdLevel::kAvx2, vector::SimdLevel::kAvx512Vnni}) {
    vector::SimdLevel parsed;
    ASSERT_TRUE(vector::ParseSimdLevel(vector::SimdLevelName(l), &parsed));
    EXPECT_EQ(parsed, l);
  }
  vector::SimdLevel ignored;
  EXPECT_FALSE(vector::ParseSimdLevel("sse2", &ignored));
  EXPECT_LE(vector::ActiveSimdLevel(), vector::DetectedSimdLevel());
}

}  // namespace
}  // namespace semcached
