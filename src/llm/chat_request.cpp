#include "llm/chat_request.h"

#include <nlohmann/json.hpp>

#include "cache/fingerprint.h"

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

}  // namespace

Result<ChatKey> OpenAiChatKey(const json& body, const CachePolicy& policy) {
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
  if (!last.is_object() || last.value("role", "") != "user" || !last.contains("content")) {
    k.why_not = "the last message is not the user's";
    return k;
  }
  if (!MessageText(last["content"], &k.prompt) || k.prompt.empty()) {
    k.why_not = "the last message is not plain text";
    return k;
  }
  if (body.contains("n") && body["n"].is_number() && body["n"].get<double>() > policy.max_n) {
    k.why_not = "n > " + std::to_string(policy.max_n);
    return k;
  }
  if (body.contains("temperature") && body["temperature"].is_number() &&
      body["temperature"].get<double>() > policy.max_temperature) {
    k.why_not = "temperature above the caching bound";
    return k;
  }
  // Everything but the last user message, canonically dumped (object keys sorted).
  json scope = json::object();
  scope["provider"] = "openai";
  scope["model"] = k.model;
  scope["context"] = json(messages->begin(), messages->end() - 1);
  for (const auto& field : policy.scope_fields) {
    if (body.contains(field)) scope["params"][field] = body[field];
  }
  k.scope = cache::Sha256Hex(scope.dump());
  k.cacheable = true;
  return k;
}

}  // namespace semcached::llm
