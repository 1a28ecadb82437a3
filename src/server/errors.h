// The one place where failures become HTTP error responses.
//
// Every error body has the LangCache problem shape, {title, status, detail, type, fields?},
// so the official LangCache SDKs can parse errors from any route. Handlers return a Status;
// this file decides the status code and the `type`.
#pragma once

#include <string>

#include "common/status.h"
#include "server/http_types.h"

namespace semcached::server {

// Error types the LangCache SDK knows (docs/langcache-api.md), plus a few for routes
// outside that API.
namespace error_type {
inline constexpr const char* kInvalidData = "/errors/invalid-data";
inline constexpr const char* kAuthenticationFailed = "/errors/authentication-failed";
inline constexpr const char* kInsufficientPermissions = "/errors/insufficient-permissions";
inline constexpr const char* kResourceNotFound = "/errors/resource/not-found";
inline constexpr const char* kPayloadTooLarge = "/errors/payload-too-large";
inline constexpr const char* kTooManyRequests = "/errors/too-many-requests";
inline constexpr const char* kDatabaseUnavailable =
    "/errors/database/resource-database-unavailable";
inline constexpr const char* kUnexpected = "/errors/unexpected-error";
inline constexpr const char* kConflict = "/errors/resource/conflict";  // admin API only
inline constexpr const char* kMethodNotAllowed = "/errors/method-not-allowed";
inline constexpr const char* kHeaderTooLarge = "/errors/header-too-large";
inline constexpr const char* kServiceUnavailable = "/errors/service-unavailable";
}  // namespace error_type

// A JSON problem response.
HttpResponse ErrorResponse(int status, const std::string& type, const std::string& detail);

// The response for a failed Status: code -> HTTP status and type.
HttpResponse ErrorResponse(const Status& status, const std::string& type_override = "");

// The reason phrase for a status code ("Not Found").
std::string ReasonPhrase(int status);

}  // namespace semcached::server
