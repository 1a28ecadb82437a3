#include "server/errors.h"

#include <nlohmann/json.hpp>

namespace semcached::server {
namespace {

struct Mapping {
  int status;
  const char* type;
};

Mapping MapCode(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return {200, ""};
    case ErrorCode::kInvalidArgument: return {400, error_type::kInvalidData};
    case ErrorCode::kNotFound: return {404, error_type::kResourceNotFound};
    case ErrorCode::kUnauthenticated: return {401, error_type::kAuthenticationFailed};
    case ErrorCode::kPermissionDenied: return {403, error_type::kInsufficientPermissions};
    case ErrorCode::kPayloadTooLarge: return {413, error_type::kPayloadTooLarge};
    case ErrorCode::kResourceExhausted: return {429, error_type::kTooManyRequests};
    case ErrorCode::kUnavailable: return {424, error_type::kDatabaseUnavailable};
    case ErrorCode::kDeadlineExceeded: return {424, error_type::kDatabaseUnavailable};
    case ErrorCode::kDataLoss: return {500, error_type::kUnexpected};
    case ErrorCode::kAlreadyExists: return {409, error_type::kConflict};
    case ErrorCode::kFailedPrecondition: return {409, error_type::kConflict};
    case ErrorCode::kInternal: return {500, error_type::kUnexpected};
  }
  return {500, error_type::kUnexpected};
}

}  // namespace

std::string ReasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 424: return "Failed Dependency";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status " + std::to_string(status);
  }
}

HttpResponse ErrorResponse(int status, const std::string& type, const std::string& detail) {
  nlohmann::json body = {
      {"title", ReasonPhrase(status)}, {"status", status}, {"detail", detail}, {"type", type}};
  return HttpResponse::Json(status,
                            body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

HttpResponse ErrorResponse(const Status& status, const std::string& type_override) {
  Mapping m = MapCode(status.code());
  nlohmann::json body = {{"title", ReasonPhrase(m.status)},
                         {"status", m.status},
                         {"detail", status.message()},
                         {"type", type_override.empty() ? m.type : type_override}};
  if (!status.fields().empty()) {
    nlohmann::json fields = nlohmann::json::array();
    for (const auto& f : status.fields()) {
      fields.push_back({{"field", f.field}, {"rule", f.rule}, {"message", f.message}});
    }
    body["fields"] = std::move(fields);
  }
  return HttpResponse::Json(m.status,
                            body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace semcached::server
