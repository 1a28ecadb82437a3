// What makes two chat requests "the same question" for the caching proxy.
//
// A provider request is reduced to: the prompt matched semantically (the last user message)
// and a scope that must match exactly (provider, model, system prompt, the earlier turns, tools
// and response format, and the sampling settings that change the answer), hashed. A
// follow-up turn thus never hits an entry made without its context. Also whether the request
// may be cached at all (policy: n > 1, temperature above a bound, a last message that is not
// the user's).
// No HTTP, no cache calls here: server/proxy_routes.cpp uses it.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"

namespace semcached::llm {

struct CachePolicy {
  int max_n = 1;                 // n above this: not cached
  double max_temperature = 1.0;  // temperature above this: not cached
  // Request fields that change the answer and so must match exactly.
  std::vector<std::string> scope_fields = {
      // OpenAI
      "temperature", "top_p", "seed", "n", "stop", "max_tokens", "max_completion_tokens",
      "presence_penalty", "frequency_penalty", "logit_bias", "tools", "tool_choice", "functions",
      "function_call", "response_format", "logprobs", "top_logprobs", "reasoning_effort",
      // Anthropic
      "top_k", "stop_sequences", "thinking", "system",
      // Gemini
      "generationConfig", "systemInstruction", "toolConfig", "safetySettings"};
};

struct ChatKey {
  bool cacheable = false;
  std::string why_not;  // when not cacheable: the reason, for logs and the bypass header
  std::string prompt;   // the last user message's text
  std::string model;
  std::string scope;  // SHA-256 hex of everything else that must match
  bool stream = false;
};

// OpenAI chat completions (POST /v1/chat/completions).
Result<ChatKey> OpenAiChatKey(const nlohmann::json& body, const CachePolicy& policy);
// OpenAI Responses API (POST /v1/responses): `input` (a string or a list of messages) and
// `instructions`; `previous_response_id` chains to server-side state the cache cannot see,
// so such requests are not cached.
Result<ChatKey> OpenAiResponsesKey(const nlohmann::json& body, const CachePolicy& policy);
bool OpenAiResponsesStorable(const nlohmann::json& answer);
// Anthropic messages (POST /v1/messages).
Result<ChatKey> AnthropicChatKey(const nlohmann::json& body, const CachePolicy& policy);
// Gemini generateContent (POST /v1beta/models/{model}:generateContent); the model is in the path.
Result<ChatKey> GeminiChatKey(const nlohmann::json& body, const std::string& model,
                              const CachePolicy& policy);

// Whether an upstream answer may be stored: finished normally, text only, no refusal.
bool OpenAiStorable(const nlohmann::json& answer);
bool AnthropicStorable(const nlohmann::json& answer);
bool GeminiStorable(const nlohmann::json& answer);
// The text an answer gives the user, in the provider's format (wire names: openai,
// openai-responses, anthropic, gemini): what two answers are compared on (ids, timestamps and
// usage always differ). Empty when the answer has none.
std::string AnswerText(const std::string& provider, const nlohmann::json& answer);

// An OpenAI chat-completion stream (the server-sent events as received) assembled into the
// one chat.completion it stands for; nullopt unless it completed normally ([DONE] after a
// "stop") without a refusal or a tool call.
std::optional<nlohmann::json> OpenAiAssembleStream(std::string_view events);
// A stored chat.completion replayed as the stream events OpenAI would have sent.
std::vector<std::string> OpenAiReplayEvents(const nlohmann::json& completion, bool include_usage);
// The same for Anthropic (message_start ... message_stop; complete only after "end_turn" and
// message_stop, text blocks only) and Gemini (?alt=sse chunks; complete when the stream ended
// and the last chunk said finishReason STOP).
std::optional<nlohmann::json> AnthropicAssembleStream(std::string_view events);
std::vector<std::string> AnthropicReplayEvents(const nlohmann::json& message);
std::optional<nlohmann::json> GeminiAssembleStream(std::string_view events);
std::vector<std::string> GeminiReplayEvents(const nlohmann::json& response);

}  // namespace semcached::llm
