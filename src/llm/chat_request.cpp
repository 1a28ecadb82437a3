#include "llm/chat_request.h"

#include <nlohmann/json.hpp>

#include "common/sha256.h"

namespace semcached::llm {

namespace {

using nlohmann::json;

// A message's text: a string, or the text parts of a content array (images etc. make the
// request uncacheable, reported by the caller).
bool MessageText(const json& content, std::string* out) {
  if (content.is_string()) {
    *out = content.get<std::string>();
    return true;
  }
  if (!content.is_array()) return false;
  out->clear();
  for (const auto& part : content) {
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text"))
      return false;
    if (!out->empty()) out->push_back('\n');
    *out += part["text"].get<std::string>();
  }
  return true;
}

// The scope of everything but the prompt: provider, model, earlier turns, listed fields.
std::string ScopeHash(const char* provider, const std::string& model, const json& context,
                      const json& body, const CachePolicy& policy) {
  json scope = json::object();
  scope["provider"] = provider;
  scope["model"] = model;
  scope["context"] = context;
  for (const auto& field : policy.scope_fields) {
    if (body.contains(field)) scope["params"][field] = body[field];
  }
  return Sha256Hex(scope.dump());
}

bool TooHot(const json& temperature, const CachePolicy& policy) {
  return temperature.is_number() && temperature.get<double>() > policy.max_temperature;
}

}  // namespace

namespace {

// OpenAI and Anthropic share the shape: a model and a messages array whose last element is
// the user's turn. Fills the key, or says why the request is not cacheable.
Result<ChatKey> MessagesKey(const char* provider, const json& body, const CachePolicy& policy) {
  ChatKey k;
  if (!body.is_object()) return InvalidArgument("the request body must be a JSON object");
  auto model = body.find("model");
  auto messages = body.find("messages");
  if (model == body.end() || !model->is_string())
    return InvalidArgument("'model' must be a string");
  if (messages == body.end() || !messages->is_array() || messages->empty()) {
    return InvalidArgument("'messages' must be a non-empty array");
  }
  k.model = model->get<std::string>();
  k.stream = body.value("stream", false);
  const json& last = messages->back();
  if (!last.is_object() || last.value("role", "") != "user" || !last.contains("content") ||
      !MessageText(last["content"], &k.prompt) || k.prompt.empty()) {
    k.why_not = "the last message is not the user's plain text";
    return k;
  }
  if (body.contains("n") && body["n"].is_number() && body["n"].get<double>() > policy.max_n) {
    k.why_not = "n > " + std::to_string(policy.max_n);
    return k;
  }
  if (body.contains("temperature") && TooHot(body["temperature"], policy)) {
    k.why_not = "temperature above the caching bound";
    return k;
  }
  // Everything but the last user message, canonically dumped (object keys sorted).
  k.scope =
      ScopeHash(provider, k.model, json(messages->begin(), messages->end() - 1), body, policy);
  k.cacheable = true;
  return k;
}

}  // namespace

Result<ChatKey> OpenAiChatKey(const json& body, const CachePolicy& policy) {
  return MessagesKey("openai", body, policy);
}

Result<ChatKey> OpenAiResponsesKey(const json& body, const CachePolicy& policy) {
  if (!body.is_object()) return InvalidArgument("the request body must be a JSON object");
  if (!body.contains("model") || !body["model"].is_string())
    return InvalidArgument("'model' must be a string");
  if (!body.contains("input")) return InvalidArgument("'input' is required");
  ChatKey k;
  k.model = body["model"].get<std::string>();
  k.stream = body.value("stream", false);
  if (body.contains("previous_response_id") && !body["previous_response_id"].is_null()) {
    k.why_not = "previous_response_id refers to state the cache cannot see";
    return k;
  }
  json context = json::array();
  const json& input = body["input"];
  if (input.is_string()) {
    k.prompt = input.get<std::string>();
  } else if (input.is_array() && !input.empty()) {
    const json& last = input.back();
    if (!last.is_object() || last.value("role", "") != "user" || !last.contains("content") ||
        !MessageText(last["content"], &k.prompt)) {
      // Content parts of the Responses API are typed input_text.
      k.prompt.clear();
      if (last.is_object() && last.value("role", "") == "user" && last.contains("content") &&
          last["content"].is_array()) {
        for (const auto& part : last["content"]) {
          if (!part.is_object() || part.value("type", "") != "input_text") {
            k.prompt.clear();
            break;
          }
          k.prompt += part.value("text", "");
        }
      }
    }
    context = json(input.begin(), input.end() - 1);
  }
  if (k.prompt.empty()) {
    k.why_not = "the last input is not the user's plain text";
    return k;
  }
  if (body.contains("temperature") && TooHot(body["temperature"], policy)) {
    k.why_not = "temperature above the caching bound";
    return k;
  }
  json scope_body = body;
  if (body.contains("instructions")) scope_body["system"] = body["instructions"];
  k.scope = ScopeHash("openai-responses", k.model, context, scope_body, policy);
  k.cacheable = true;
  return k;
}

Result<ChatKey> AnthropicChatKey(const json& body, const CachePolicy& policy) {
  return MessagesKey("anthropic", body, policy);
}

Result<ChatKey> GeminiChatKey(const json& body, const std::string& model,
                              const CachePolicy& policy) {
  ChatKey k;
  if (!body.is_object()) return InvalidArgument("the request body must be a JSON object");
  auto contents = body.find("contents");
  if (contents == body.end() || !contents->is_array() || contents->empty()) {
    return InvalidArgument("'contents' must be a non-empty array");
  }
  k.model = model;
  const json& last = contents->back();
  const std::string role = last.is_object() ? last.value("role", "user") : "";
  if (role != "user" || !last.contains("parts") || !last["parts"].is_array()) {
    k.why_not = "the last content is not the user's";
    return k;
  }
  for (const auto& part : last["parts"]) {
    if (!part.is_object() || !part.contains("text") || !part["text"].is_string() ||
        part.size() != 1) {
      k.why_not = "the last content is not plain text";
      return k;
    }
    if (!k.prompt.empty()) k.prompt.push_back('\n');
    k.prompt += part["text"].get<std::string>();
  }
  if (k.prompt.empty()) {
    k.why_not = "the last content has no text";
    return k;
  }
  const json config = body.value("generationConfig", json::object());
  if (config.contains("candidateCount") && config["candidateCount"].is_number() &&
      config["candidateCount"].get<double>() > policy.max_n) {
    k.why_not = "candidateCount > " + std::to_string(policy.max_n);
    return k;
  }
  if (config.contains("temperature") && TooHot(config["temperature"], policy)) {
    k.why_not = "temperature above the caching bound";
    return k;
  }
  k.scope =
      ScopeHash("gemini", k.model, json(contents->begin(), contents->end() - 1), body, policy);
  k.cacheable = true;
  return k;
}

bool OpenAiStorable(const json& body) {
  if (!body.is_object() || !body.contains("choices") || !body["choices"].is_array() ||
      body["choices"].size() != 1) {
    return false;
  }
  const json& choice = body["choices"][0];
  if (choice.value("finish_reason", "") != "stop") return false;
  const json& message = choice.value("message", json::object());
  if (message.contains("refusal") && !message["refusal"].is_null()) return false;
  return message.contains("content") && message["content"].is_string();
}

bool OpenAiResponsesStorable(const json& body) {
  if (!body.is_object() || body.value("status", "") != "completed" || !body.contains("output") ||
      !body["output"].is_array() || body["output"].empty()) {
    return false;
  }
  for (const auto& item : body["output"]) {
    if (!item.is_object() || item.value("type", "") != "message")
      return false;  // tool calls, reasoning...
    for (const auto& part : item.value("content", json::array())) {
      if (part.value("type", "") != "output_text") return false;  // refusals too
    }
  }
  return true;
}

bool AnthropicStorable(const json& body) {
  if (!body.is_object() || body.value("type", "") != "message" ||
      body.value("stop_reason", "") != "end_turn") {
    return false;
  }
  if (!body.contains("content") || !body["content"].is_array() || body["content"].empty())
    return false;
  for (const auto& block : body["content"]) {
    if (!block.is_object() || block.value("type", "") != "text") return false;
  }
  return true;
}

bool GeminiStorable(const json& body) {
  if (!body.is_object() || !body.contains("candidates") || !body["candidates"].is_array() ||
      body["candidates"].size() != 1) {
    return false;
  }
  const json& c = body["candidates"][0];
  if (c.value("finishReason", "") != "STOP") return false;
  if (!c.contains("content") || !c["content"].contains("parts") ||
      !c["content"]["parts"].is_array())
    return false;
  for (const auto& part : c["content"]["parts"]) {
    if (!part.is_object() || !part.contains("text")) return false;
  }
  return true;
}

std::string AnswerText(const std::string& provider, const json& answer) {
  std::string out;
  auto append = [&out](const json& text) {
    if (!text.is_string()) return;
    if (!out.empty()) out += '\n';
    out += text.get<std::string>();
  };
  if (!answer.is_object()) return out;
  if (provider == "openai") {
    const json& choices = answer.value("choices", json::array());
    if (choices.is_array() && !choices.empty() && choices[0].is_object())
      append(choices[0].value("message", json::object()).value("content", json()));
  } else if (provider == "openai-responses") {
    for (const auto& item : answer.value("output", json::array()))
      if (item.is_object())
        for (const auto& part : item.value("content", json::array()))
          if (part.is_object()) append(part.value("text", json()));
  } else if (provider == "anthropic") {
    for (const auto& block : answer.value("content", json::array()))
      if (block.is_object()) append(block.value("text", json()));
  } else if (provider == "gemini") {
    const json& candidates = answer.value("candidates", json::array());
    if (candidates.is_array() && !candidates.empty() && candidates[0].is_object())
      for (const auto& part :
           candidates[0].value("content", json::object()).value("parts", json::array()))
        if (part.is_object()) append(part.value("text", json()));
  }
  return out;
}

namespace {

// Calls `f` with the payload of every `data:` line of a server-sent event stream; stops and
// returns false when `f` does.
template <typename F>
bool ForEachData(std::string_view events, F&& f) {
  std::size_t pos = 0;
  while (pos < events.size()) {
    auto nl = events.find('\n', pos);
    if (nl == std::string_view::npos) nl = events.size();
    std::string_view line = events.substr(pos, nl - pos);
    pos = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.rfind("data:", 0) != 0) continue;
    line.remove_prefix(5);
    while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    if (!f(line)) return false;
  }
  return true;
}

}  // namespace

std::optional<json> OpenAiAssembleStream(std::string_view events) {
  std::string content, finish, id, model;
  json usage;
  std::int64_t created = 0;
  bool done = false;
  const bool ok = ForEachData(events, [&](std::string_view data) {
    if (data == "[DONE]") {
      done = true;
      return true;
    }
    json chunk = json::parse(data, nullptr, false);
    if (!chunk.is_object()) return false;
    if (id.empty()) id = chunk.value("id", "");
    if (model.empty()) model = chunk.value("model", "");
    if (created == 0 && chunk.contains("created") && chunk["created"].is_number_integer()) {
      created = chunk["created"].get<std::int64_t>();
    }
    if (chunk.contains("usage") && chunk["usage"].is_object()) usage = chunk["usage"];
    if (!chunk.contains("choices") || !chunk["choices"].is_array()) return true;
    for (const auto& choice : chunk["choices"]) {
      if (choice.value("index", 0) != 0) return false;  // n > 1 is never cached
      const json delta = choice.value("delta", json::object());
      if (delta.contains("refusal") && !delta["refusal"].is_null()) return false;
      if (delta.contains("tool_calls") || delta.contains("function_call")) return false;
      if (delta.contains("content") && delta["content"].is_string())
        content += delta["content"].get<std::string>();
      if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) {
        finish = choice["finish_reason"].get<std::string>();
      }
    }
    return true;
  });
  if (!ok || !done || finish != "stop") return std::nullopt;
  json out = {{"id", id},
              {"object", "chat.completion"},
              {"created", created},
              {"model", model},
              {"choices",
               {{{"index", 0},
                 {"message", {{"role", "assistant"}, {"content", content}, {"refusal", nullptr}}},
                 {"logprobs", nullptr},
                 {"finish_reason", "stop"}}}}};
  if (!usage.is_null()) out["usage"] = usage;
  return out;
}

std::vector<std::string> OpenAiReplayEvents(const json& c, bool include_usage) {
  auto event = [](const json& chunk) { return "data: " + chunk.dump() + "\n\n"; };
  json base = {{"id", c.value("id", "chatcmpl-semcached")},
               {"object", "chat.completion.chunk"},
               {"created", c.value("created", 0)},
               {"model", c.value("model", "")}};
  std::string content;
  if (c.contains("choices") && c["choices"].is_array() && !c["choices"].empty()) {
    content = c["choices"][0].value("message", json::object()).value("content", "");
  }
  std::vector<std::string> out;
  json first = base;
  first["choices"] = {{{"index", 0},
                       {"delta", {{"role", "assistant"}, {"content", content}}},
                       {"finish_reason", nullptr}}};
  out.push_back(event(first));
  json last = base;
  last["choices"] = {{{"index", 0}, {"delta", json::object()}, {"finish_reason", "stop"}}};
  out.push_back(event(last));
  if (include_usage && c.contains("usage")) {
    json usage = base;
    usage["choices"] = json::array();
    usage["usage"] = c["usage"];
    out.push_back(event(usage));
  }
  out.push_back("data: [DONE]\n\n");
  return out;
}

std::optional<json> AnthropicAssembleStream(std::string_view events) {
  json message;
  std::string text, stop_reason;
  std::int64_t output_tokens = -1;
  bool stopped = false;
  const bool ok = ForEachData(events, [&](std::string_view data) {
    json e = json::parse(data, nullptr, false);
    if (!e.is_object()) return false;
    const std::string type = e.value("type", "");
    if (type == "message_start") {
      message = e.value("message", json::object());
    } else if (type == "content_block_start") {
      if (e.value("content_block", json::object()).value("type", "") != "text") return false;
    } else if (type == "content_block_delta") {
      const json d = e.value("delta", json::object());
      if (d.value("type", "") != "text_delta") return false;
      text += d.value("text", "");
    } else if (type == "message_delta") {
      stop_reason = e.value("delta", json::object()).value("stop_reason", "");
      if (e.contains("usage") && e["usage"].contains("output_tokens"))
        output_tokens = e["usage"]["output_tokens"];
    } else if (type == "message_stop") {
      stopped = true;
    } else if (type == "error") {
      return false;
    }
    return true;
  });
  if (!ok || !stopped || stop_reason != "end_turn" || !message.is_object()) return std::nullopt;
  message["content"] = json::array({{{"type", "text"}, {"text", text}}});
  message["stop_reason"] = "end_turn";
  message["stop_sequence"] = nullptr;
  if (output_tokens >= 0) message["usage"]["output_tokens"] = output_tokens;
  return message;
}

std::vector<std::string> AnthropicReplayEvents(const json& m) {
  auto event = [](const char* name, const json& data) {
    return std::string("event: ") + name + "\ndata: " + data.dump() + "\n\n";
  };
  std::string text;
  for (const auto& block : m.value("content", json::array())) text += block.value("text", "");
  json start = m;
  start["content"] = json::array();
  start["stop_reason"] = nullptr;
  const json usage = m.value("usage", json::object());
  return {
      event("message_start", {{"type", "message_start"}, {"message", start}}),
      event("content_block_start", {{"type", "content_block_start"},
                                    {"index", 0},
                                    {"content_block", {{"type", "text"}, {"text", ""}}}}),
      event("content_block_delta", {{"type", "content_block_delta"},
                                    {"index", 0},
                                    {"delta", {{"type", "text_delta"}, {"text", text}}}}),
      event("content_block_stop", {{"type", "content_block_stop"}, {"index", 0}}),
      event("message_delta", {{"type", "message_delta"},
                              {"delta", {{"stop_reason", "end_turn"}, {"stop_sequence", nullptr}}},
                              {"usage", {{"output_tokens", usage.value("output_tokens", 0)}}}}),
      event("message_stop", {{"type", "message_stop"}})};
}

std::optional<json> GeminiAssembleStream(std::string_view events) {
  std::string text, finish;
  json last;
  const bool ok = ForEachData(events, [&](std::string_view data) {
    json chunk = json::parse(data, nullptr, false);
    if (!chunk.is_object() || chunk.contains("error")) return false;
    if (chunk.contains("candidates") && chunk["candidates"].is_array() &&
        !chunk["candidates"].empty()) {
      const json& c = chunk["candidates"][0];
      if (c.value("index", 0) != 0) return false;
      for (const auto& part : c.value("content", json::object()).value("parts", json::array())) {
        if (!part.contains("text")) return false;  // function calls etc. are not stored
        text += part["text"].get<std::string>();
      }
      if (c.contains("finishReason")) finish = c["finishReason"].get<std::string>();
    }
    last = std::move(chunk);
    return true;
  });
  if (!ok || finish != "STOP" || !last.is_object()) return std::nullopt;
  json out = last;
  out["candidates"] =
      json::array({{{"content", {{"role", "model"}, {"parts", json::array({{{"text", text}}})}}},
                    {"finishReason", "STOP"},
                    {"index", 0}}});
  return out;
}

std::vector<std::string> GeminiReplayEvents(const json& response) {
  return {"data: " + response.dump() + "\r\n\r\n"};
}

}  // namespace semcached::llm
