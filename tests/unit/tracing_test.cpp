#include "common/tracing.h"

#include "common/hash.h"

#include <gtest/gtest.h>

namespace semcached::tracing {
namespace {

TEST(Tracing, ParsesAndFormatsTraceparent) {
  const std::string header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  auto c = ParseTraceparent(header);
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->sampled);
  EXPECT_EQ(LowerHex(c->trace_id.data(), 16), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(LowerHex(c->span_id.data(), 8), "00f067aa0ba902b7");
  EXPECT_EQ(FormatTraceparent(*c), header);
  EXPECT_FALSE(
      ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")->sampled);
  // A later version may add fields; its first four are read.
  EXPECT_TRUE(ParseTraceparent(
      "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds"));
}

TEST(Tracing, RefusesMalformedTraceparent) {
  for (const char* bad : {"", "00", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                          "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                          "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                          "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
                          "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
                          "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01"})
    EXPECT_FALSE(ParseTraceparent(bad)) << bad;
}

struct Collect final : Sink {
  std::vector<std::vector<SpanRecord>> batches;
  void Export(std::vector<SpanRecord>&& spans) override { batches.push_back(std::move(spans)); }
};

TEST(Tracing, ChildrenNestUnderTheActiveSpanAndLeaveWithTheRoot) {
  Collect sink;
  Configure(&sink, 1.0);
  EXPECT_FALSE(Current());
  {
    Span outside("no request");  // no active span: records nothing
    EXPECT_FALSE(outside.recording());
  }
  std::string root_id;
  {
    Span root("GET /x", SpanKind::kServer, std::nullopt, 0);
    ASSERT_TRUE(root.recording());
    root_id = LowerHex(root.context().span_id.data(), 8);
    {
      Span a("a");
      a.Set("n", 3);
      { Span b("b", SpanKind::kClient); }
      EXPECT_EQ(Current()->span_id, a.context().span_id);
    }
    EXPECT_EQ(Current()->span_id, root.context().span_id);
    EXPECT_TRUE(sink.batches.empty());  // nothing leaves before the request ends
  }
  EXPECT_FALSE(Current());
  ASSERT_EQ(sink.batches.size(), 1u);
  const auto& spans = sink.batches[0];
  ASSERT_EQ(spans.size(), 3u);
  EXPECT_EQ(spans[0].name, "b");
  EXPECT_EQ(spans[1].name, "a");
  EXPECT_EQ(spans[2].name, "GET /x");
  EXPECT_EQ(spans[0].parent_span_id, spans[1].span_id);
  EXPECT_EQ(LowerHex(spans[1].parent_span_id.data(), 8), root_id);
  EXPECT_EQ(spans[0].trace_id, spans[2].trace_id);
  EXPECT_EQ(std::get<std::int64_t>(spans[1].attributes[0].value), 3);
  Configure(nullptr, 1.0);
}

TEST(Tracing, SamplingFollowsTheCallerElseTheRatio) {
  Collect sink;
  Configure(&sink, 0.0);
  {
    Span root("r", SpanKind::kServer, std::nullopt, 0);
    EXPECT_FALSE(root.recording());
    EXPECT_TRUE(Current());  // still propagated, unsampled
    EXPECT_FALSE(Current()->sampled);
    Span child("c");
    EXPECT_FALSE(child.recording());
  }
  auto caller = ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  {
    Span root("r", SpanKind::kServer, caller, 0);
    EXPECT_TRUE(root.recording());
  }
  EXPECT_EQ(sink.batches.size(), 1u);
  // About half of new traces at 0.5.
  Configure(&sink, 0.5);
  int recorded = 0;
  for (int i = 0; i < 2000; ++i) {
    Span root("r", SpanKind::kServer, std::nullopt, 0);
    recorded += root.recording();
  }
  EXPECT_GT(recorded, 850);
  EXPECT_LT(recorded, 1150);
  Configure(nullptr, 1.0);
}

}  // namespace
}  // namespace semcached::tracing
