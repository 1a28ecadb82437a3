// The circuit breaker's state machine over a hand-driven clock.
#include <gtest/gtest.h>

#include "redis/breaker.h"
#include "redis/cluster.h"
#include "redis/reply.h"

namespace semcached::redis {
namespace {

using namespace std::chrono_literals;

TEST(CircuitBreaker, OpensAfterConsecutiveFailuresAndProbesOnce) {
  CircuitBreaker b(3, 1000);
  auto t = CircuitBreaker::Clock::now();
  EXPECT_TRUE(b.AllowsTraffic(t));
  EXPECT_FALSE(b.RecordFailure(t));
  EXPECT_FALSE(b.RecordFailure(t));
  b.RecordSuccess();  // a success resets the count
  EXPECT_FALSE(b.RecordFailure(t));
  EXPECT_FALSE(b.RecordFailure(t));
  EXPECT_TRUE(b.RecordFailure(t));  // third in a row opens
  EXPECT_EQ(b.State(t), BreakerState::kOpen);
  EXPECT_FALSE(b.AllowsTraffic(t + 999ms));
  EXPECT_FALSE(b.TakeProbe(t + 999ms));

  EXPECT_EQ(b.State(t + 1s), BreakerState::kHalfOpen);
  EXPECT_FALSE(b.AllowsTraffic(t + 1s));  // half-open: only the probe goes
  EXPECT_TRUE(b.TakeProbe(t + 1s));
  EXPECT_FALSE(b.TakeProbe(t + 1s));  // one probe at a time

  // A failed probe opens again for another full period.
  b.RecordFailure(t + 1100ms);
  EXPECT_EQ(b.State(t + 2000ms), BreakerState::kOpen);
  EXPECT_TRUE(b.TakeProbe(t + 2100ms));
  b.RecordSuccess();
  EXPECT_EQ(b.State(t + 2100ms), BreakerState::kClosed);
  EXPECT_TRUE(b.AllowsTraffic(t + 2100ms));
  EXPECT_EQ(b.times_opened(), 2u);
}

TEST(RedisReply, ReadsBothProtocolShapes) {
  auto text = [](ReplyType t, std::string s) {
    Reply r;
    r.type = t;
    r.str = std::move(s);
    return r;
  };
  Reply resp2;
  resp2.type = ReplyType::kArray;
  Reply three;
  three.type = ReplyType::kInteger;
  three.integer = 3;
  resp2.elements = {text(ReplyType::kString, "size"), three};
  Reply resp3 = resp2;
  resp3.type = ReplyType::kMap;
  for (const Reply* r : {&resp2, &resp3}) {
    ASSERT_NE(r->Field("size"), nullptr);
    EXPECT_EQ(*r->Field("size")->AsInteger(), 3);
    EXPECT_EQ(r->Field("nope"), nullptr);
  }
  EXPECT_DOUBLE_EQ(*text(ReplyType::kString, "0.75").AsDouble(), 0.75);
  Reply half;
  half.type = ReplyType::kDouble;
  half.number = 0.5;
  EXPECT_DOUBLE_EQ(*half.AsDouble(), 0.5);
  Reply yes;
  yes.type = ReplyType::kBool;
  yes.integer = 1;
  EXPECT_EQ(*yes.AsInteger(), 1);
  EXPECT_FALSE(text(ReplyType::kString, "x1").AsInteger().ok());
  EXPECT_TRUE(IsTransientServerError("LOADING Redis is loading the dataset in memory"));
  EXPECT_TRUE(IsTransientServerError("TRYAGAIN Multiple keys request during rehashing of slot"));
  EXPECT_FALSE(
      IsTransientServerError("WRONGTYPE Operation against a key holding the wrong kind of value"));
}

TEST(RedisCluster, KeySlotMatchesTheSpecification) {
  // Values from the Redis Cluster specification and CLUSTER KEYSLOT.
  EXPECT_EQ(KeySlot("123456789"), 0x31C3 & 16383);  // CRC16/XMODEM check value
  EXPECT_EQ(KeySlot("foo"), 12182);
  EXPECT_EQ(KeySlot("somekey"), 11058);
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("{user1000}.followers"));
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("user1000"));
  EXPECT_EQ(KeySlot("foo{}{bar}"), KeySlot("foo{}{bar}"));  // empty tag: the whole key
  EXPECT_NE(KeySlot("foo{}{bar}"), KeySlot("bar"));
  EXPECT_EQ(KeySlot("semcached:{docs}:vectors"), KeySlot("semcached:{docs}:entry:42"));
}

}  // namespace
}  // namespace semcached::redis
