#include "llm/providers.h"

namespace semcached::llm {

namespace {

using nlohmann::json;

ProviderWire OpenAiChat() {
  ProviderWire w;
  w.name = "openai";
  w.api = "openai";
  w.key = [](const json& b, const std::string&, const CachePolicy& policy) {
    return OpenAiChatKey(b, policy);
  };
  w.upstream_path = [](const std::string&, const std::string&) {
    return std::string("/v1/chat/completions");
  };
  w.pass_headers = {"authorization", "openai-organization", "openai-project", "openai-beta"};
  w.key_header = "authorization";
  w.key_prefix = "Bearer ";
  w.storable = OpenAiStorable;
  w.assemble = OpenAiAssembleStream;
  w.replay = [](const json& answer, const json& request) {
    return OpenAiReplayEvents(
        answer, request.value("stream_options", json::object()).value("include_usage", false));
  };
  w.error_body = [](int status, const std::string& message) {
    return json{{"error",
                 {{"message", message},
                  {"type", status == 400 ? "invalid_request_error" : "upstream_error"},
                  {"param", nullptr},
                  {"code", nullptr}}}}
        .dump();
  };
  return w;
}

// The Responses API: its own request and answer shapes; its streams pass through uncached.
ProviderWire OpenAiResponses() {
  ProviderWire w = OpenAiChat();
  w.name = "openai-responses";
  w.key = [](const json& b, const std::string&, const CachePolicy& policy) {
    return OpenAiResponsesKey(b, policy);
  };
  w.upstream_path = [](const std::string&, const std::string&) {
    return std::string("/v1/responses");
  };
  w.storable = OpenAiResponsesStorable;
  w.assemble = nullptr;
  w.replay = nullptr;
  return w;
}

ProviderWire AnthropicMessages() {
  ProviderWire w;
  w.name = "anthropic";
  w.api = "anthropic";
  w.key = [](const json& b, const std::string&, const CachePolicy& policy) {
    return AnthropicChatKey(b, policy);
  };
  w.upstream_path = [](const std::string&, const std::string&) {
    return std::string("/v1/messages");
  };
  w.pass_headers = {"x-api-key", "authorization", "anthropic-version", "anthropic-beta"};
  w.key_header = "x-api-key";
  w.storable = AnthropicStorable;
  w.assemble = AnthropicAssembleStream;
  w.replay = [](const json& answer, const json&) { return AnthropicReplayEvents(answer); };
  w.error_body = [](int status, const std::string& message) {
    return json{{"type", "error"},
                {"error",
                 {{"type", status == 400 ? "invalid_request_error" : "api_error"},
                  {"message", message}}}}
        .dump();
  };
  return w;
}

// `?key=...` in the query stays between the client and the provider.
std::string GeminiPath(const std::string& model, const char* method, const std::string& query) {
  std::string path = "/v1beta/models/" + model + ":" + method;
  if (!query.empty()) path += "?" + query;
  return path;
}

ProviderWire GeminiGenerate() {
  ProviderWire w;
  w.name = "gemini";
  w.api = "gemini";
  w.key = [](const json& b, const std::string& model, const CachePolicy& policy) {
    return GeminiChatKey(b, model, policy);
  };
  w.upstream_path = [](const std::string& model, const std::string& query) {
    return GeminiPath(model, "generateContent", query);
  };
  w.pass_headers = {"x-goog-api-key", "authorization", "x-goog-api-client"};
  w.key_header = "x-goog-api-key";
  w.storable = GeminiStorable;
  w.assemble = GeminiAssembleStream;
  w.replay = [](const json& answer, const json&) { return GeminiReplayEvents(answer); };
  w.error_body = [](int status, const std::string& message) {
    return json{{"error",
                 {{"code", status},
                  {"message", message},
                  {"status", status == 400   ? "INVALID_ARGUMENT"
                             : status == 504 ? "DEADLINE_EXCEEDED"
                                             : "UNAVAILABLE"}}}}
        .dump();
  };
  return w;
}

// Gemini streams on a route of its own (usually ?alt=sse): the same request, keyed the same
// way, passed through as it arrives.
ProviderWire GeminiStream() {
  ProviderWire w = GeminiGenerate();
  w.key = [](const json& b, const std::string& model,
             const CachePolicy& policy) -> Result<ChatKey> {
    auto k = GeminiChatKey(b, model, policy);
    if (k.ok()) k->stream = true;
    return k;
  };
  w.upstream_path = [](const std::string& model, const std::string& query) {
    return GeminiPath(model, "streamGenerateContent", query);
  };
  return w;
}

}  // namespace

const std::vector<std::pair<std::string, ProviderWire>>& ProviderRoutes() {
  static const std::vector<std::pair<std::string, ProviderWire>> routes = {
      {"/v1/chat/completions", OpenAiChat()},
      {"/v1/responses", OpenAiResponses()},
      {"/v1/messages", AnthropicMessages()},
      {"/v1beta/models/{model}:generateContent", GeminiGenerate()},
      {"/v1beta/models/{model}:streamGenerateContent", GeminiStream()},
  };
  return routes;
}

}  // namespace semcached::llm
