// What makes two chat requests the same, the cache policy, prices and usage.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "llm/chat_request.h"
#include "llm/prices.h"

namespace semcached::llm {
namespace {

using nlohmann::json;

TEST(ChatKey, ScopeCoversContextModelAndSamplingButNotThePrompt) {
  CachePolicy policy;
  json a = {{"model", "gpt-4o-mini"},
            {"messages", {{{"role", "user"}, {"content", "Which port does SSH use?"}}}}};
  auto ka = OpenAiChatKey(a, policy);
  ASSERT_TRUE(ka.ok() && ka->cacheable);
  EXPECT_EQ(ka->prompt, "Which port does SSH use?");
  json b = a;
  b["messages"][0]["content"] = "what port is SSH on";
  EXPECT_EQ(OpenAiChatKey(b, policy)->scope, ka->scope);  // only the prompt differs
  json followup = a;
  followup["messages"] = {{{"role", "user"}, {"content", "I run a mail server."}},
                          {{"role", "assistant"}, {"content", "OK."}},
                          {{"role", "user"}, {"content", "Which port does SSH use?"}}};
  EXPECT_NE(OpenAiChatKey(followup, policy)->scope, ka->scope);
  json other_model = a;
  other_model["model"] = "gpt-4o";
  EXPECT_NE(OpenAiChatKey(other_model, policy)->scope, ka->scope);
  json sampled = a;
  sampled["temperature"] = 0.2;
  EXPECT_NE(OpenAiChatKey(sampled, policy)->scope, ka->scope);
  // The scope fields are a policy: a field left out of them no longer separates requests.
  CachePolicy loose;
  loose.scope_fields = {"seed"};
  EXPECT_EQ(OpenAiChatKey(sampled, loose)->scope, OpenAiChatKey(a, loose)->scope);
  json hot = a;
  hot["temperature"] = 1.5;
  EXPECT_FALSE(OpenAiChatKey(hot, policy)->cacheable);
  json many = a;
  many["n"] = 2;
  EXPECT_FALSE(OpenAiChatKey(many, policy)->cacheable);
  json tool_last = a;
  tool_last["messages"].push_back({{"role", "tool"}, {"content", "42"}, {"tool_call_id", "x"}});
  EXPECT_FALSE(OpenAiChatKey(tool_last, policy)->cacheable);
  EXPECT_FALSE(OpenAiChatKey(json{{"model", "m"}}, policy).ok());
  // The same question through another provider is another scope.
  json claude = {{"model", "gpt-4o-mini"}, {"max_tokens", 10}, {"messages", a["messages"]}};
  EXPECT_NE(AnthropicChatKey(claude, policy)->scope, ka->scope);
  json gemini = {
      {"contents", {{{"role", "user"}, {"parts", {{{"text", "Which port does SSH use?"}}}}}}}};
  auto kg = GeminiChatKey(gemini, "gemini-2.5-flash", policy);
  ASSERT_TRUE(kg.ok() && kg->cacheable);
  EXPECT_EQ(kg->prompt, "Which port does SSH use?");
}

TEST(ChatKey, OnlyCleanAnswersAreStorable) {
  json ok = {
      {"choices",
       {{{"finish_reason", "stop"}, {"message", {{"content", "hi"}, {"refusal", nullptr}}}}}}};
  EXPECT_TRUE(OpenAiStorable(ok));
  json cut = ok;
  cut["choices"][0]["finish_reason"] = "length";
  EXPECT_FALSE(OpenAiStorable(cut));
  json refused = ok;
  refused["choices"][0]["message"]["refusal"] = "I can't help with that.";
  EXPECT_FALSE(OpenAiStorable(refused));
  EXPECT_TRUE(AnthropicStorable(
      {{"type", "message"}, {"stop_reason", "end_turn"}, {"content", {{{"type", "text"}}}}}));
  EXPECT_FALSE(AnthropicStorable(
      {{"type", "message"}, {"stop_reason", "max_tokens"}, {"content", {{{"type", "text"}}}}}));
  EXPECT_FALSE(AnthropicStorable(
      {{"type", "message"}, {"stop_reason", "end_turn"}, {"content", {{{"type", "tool_use"}}}}}));
  EXPECT_TRUE(GeminiStorable(
      {{"candidates", {{{"finishReason", "STOP"}, {"content", {{"parts", {{{"text", "x"}}}}}}}}}}));
  EXPECT_FALSE(GeminiStorable(
      {{"candidates",
        {{{"finishReason", "SAFETY"}, {"content", {{"parts", {{{"text", "x"}}}}}}}}}}));
}

TEST(Streams, AssembledOnlyWhenCompleteAndReplayedTheSame) {
  const std::string openai =
      "data: "
      "{\"id\":\"c1\",\"created\":5,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{"
      "\"content\":\"Hel\"}}]}\n\n"
      "data: "
      "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":"
      "\"stop\"}]}\n\n";
  EXPECT_FALSE(OpenAiAssembleStream(openai));  // no [DONE]: cut short
  auto whole = OpenAiAssembleStream(openai + "data: [DONE]\n\n");
  ASSERT_TRUE(whole);
  EXPECT_EQ((*whole)["choices"][0]["message"]["content"], "Hello");
  std::string replayed;
  for (const auto& e : OpenAiReplayEvents(*whole, false)) replayed += e;
  EXPECT_EQ((*OpenAiAssembleStream(replayed))["choices"][0]["message"]["content"], "Hello");

  auto ev = [](const json& data) { return "event: x\ndata: " + data.dump() + "\n\n"; };
  std::string anthropic =
      ev({{"type", "message_start"},
          {"message", {{"id", "m1"}, {"type", "message"}, {"usage", {{"input_tokens", 3}}}}}}) +
      ev({{"type", "content_block_start"},
          {"index", 0},
          {"content_block", {{"type", "text"}, {"text", ""}}}}) +
      ev({{"type", "content_block_delta"},
          {"index", 0},
          {"delta", {{"type", "text_delta"}, {"text", "Hi"}}}}) +
      ev({{"type", "message_delta"},
          {"delta", {{"stop_reason", "end_turn"}}},
          {"usage", {{"output_tokens", 2}}}});
  EXPECT_FALSE(AnthropicAssembleStream(anthropic));  // no message_stop
  auto message = AnthropicAssembleStream(anthropic + ev({{"type", "message_stop"}}));
  ASSERT_TRUE(message);
  EXPECT_EQ((*message)["content"][0]["text"], "Hi");
  EXPECT_EQ((*message)["usage"]["output_tokens"], 2);
  std::string again;
  for (const auto& e : AnthropicReplayEvents(*message)) again += e;
  EXPECT_EQ((*AnthropicAssembleStream(again))["content"][0]["text"], "Hi");
  std::string tool = ev(
      {{"type", "content_block_start"}, {"index", 0}, {"content_block", {{"type", "tool_use"}}}});
  EXPECT_FALSE(AnthropicAssembleStream(tool + ev({{"type", "message_stop"}})));

  auto chunk = [](const std::string& text, const char* finish) {
    json c = {{"candidates",
               {{{"content", {{"role", "model"}, {"parts", {{{"text", text}}}}}}, {"index", 0}}}}};
    if (finish) c["candidates"][0]["finishReason"] = finish;
    return "data: " + c.dump() + "\r\n\r\n";
  };
  EXPECT_FALSE(GeminiAssembleStream(chunk("a", nullptr) + chunk("b", nullptr)));
  EXPECT_FALSE(GeminiAssembleStream(chunk("a", nullptr) + chunk("b", "MAX_TOKENS")));
  auto gem = GeminiAssembleStream(chunk("a", nullptr) + chunk("b", "STOP"));
  ASSERT_TRUE(gem);
  EXPECT_EQ((*gem)["candidates"][0]["content"]["parts"][0]["text"], "ab");
  EXPECT_EQ(GeminiAssembleStream(GeminiReplayEvents(*gem)[0]).value(), *gem);
}

TEST(Prices, LongestPrefixOverridesAndUsage) {
  auto t = PriceTable::Defaults();
  EXPECT_DOUBLE_EQ(t.For("gpt-4o-mini-2024-07-18")->input_per_mtok, 0.15);  // not gpt-4o's 2.50
  EXPECT_DOUBLE_EQ(t.For("gpt-4o-2024-11-20")->input_per_mtok, 2.50);
  EXPECT_FALSE(t.For("some-local-model"));
  EXPECT_DOUBLE_EQ(t.Cost("some-local-model", {1000, 1000}), 0);
  ASSERT_TRUE(t.Override("some-local-model=1/2,gpt-4o=3/12").ok());
  EXPECT_DOUBLE_EQ(t.Cost("some-local-model", {1'000'000, 500'000}), 2.0);
  EXPECT_DOUBLE_EQ(t.For("gpt-4o")->output_per_mtok, 12);
  EXPECT_FALSE(t.Override("broken").ok());
  EXPECT_FALSE(t.Override("m=1").ok());
  EXPECT_FALSE(t.Override("m=-1/2").ok());
  auto u = UsageOf("openai", json{{"usage", {{"prompt_tokens", 12}, {"completion_tokens", 34}}}});
  ASSERT_TRUE(u);
  EXPECT_EQ(u->input_tokens, 12u);
  EXPECT_EQ(u->output_tokens, 34u);
  EXPECT_EQ(UsageOf("anthropic", json{{"usage", {{"input_tokens", 5}, {"output_tokens", 6}}}})
                ->output_tokens,
            6u);
  EXPECT_EQ(UsageOf("gemini",
                    json{{"usageMetadata", {{"promptTokenCount", 7}, {"candidatesTokenCount", 8}}}})
                ->input_tokens,
            7u);
  EXPECT_FALSE(UsageOf("openai", json{{"id", "x"}}));
}

}  // namespace
}  // namespace semcached::llm
