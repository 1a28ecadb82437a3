#include "server/admin_routes.h"

#include <openssl/crypto.h>

#include "server/errors.h"

namespace semcached::server {
namespace {

using nlohmann::json;

Status CheckAdmin(const HttpRequest& req, const std::string& admin_key) {
  if (admin_key.empty()) {
    return Status(ErrorCode::kPermissionDenied,
                  "the admin API is disabled: set admin_api_key to enable it");
  }
  std::string_view auth = req.Header("authorization");
  if (auth.size() <= 7 || (auth.substr(0, 7) != "Bearer " && auth.substr(0, 7) != "bearer ")) {
    return Status(ErrorCode::kUnauthenticated,
                  "an Authorization: Bearer <admin_api_key> header is required");
  }
  std::string_view key = auth.substr(7);
  if (key.size() != admin_key.size() ||
      CRYPTO_memcmp(key.data(), admin_key.data(), key.size()) != 0) {
    return Status(ErrorCode::kPermissionDenied, "this key may not administer caches");
  }
  return Status::Ok();
}

HttpResponse Fail(const Status& s) {
  return ErrorResponse(s, s.code() == ErrorCode::kNotFound ? "/errors/cache/not-found" : "");
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

void AddAdminRoutes(Router& router, std::string admin_key, AdminHandlers h) {
  auto handlers = std::make_shared<AdminHandlers>(std::move(h));
  auto key = std::make_shared<std::string>(std::move(admin_key));
  const Router::BlockingWhen cache_may_block =
      [handlers](const std::unordered_map<std::string, std::string>& params) {
        auto id = params.find("cacheId");
        return handlers->may_block && id != params.end() && handlers->may_block(id->second);
      };

  router.Add(
      "POST", "/v1/caches",
      [handlers, key](const HttpRequest& req) {
        if (Status s = CheckAdmin(req, *key); !s.ok()) return Fail(s);
        json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
        if (body.is_discarded() || !body.is_object()) {
          Status s = InvalidArgument("request body must be a JSON object of cache settings");
          s.WithField("body", "object", "not a JSON object");
          return Fail(s);
        }
        auto created = handlers->create(body);
        if (!created.ok()) return Fail(created.status());
        return HttpResponse::Json(201, Dump(*created));
      },
      /*blocking=*/true);

  router.Add(
      "GET", "/v1/caches",
      [handlers, key](const HttpRequest& req) {
        if (Status s = CheckAdmin(req, *key); !s.ok()) return Fail(s);
        return HttpResponse::Json(200, Dump({{"caches", handlers->list()}}));
      },
      /*blocking=*/true);  // describes every cache, those on Redis too

  router.Add(
      "GET", "/v1/caches/{cacheId}",
      [handlers, key](const HttpRequest& req) {
        if (Status s = CheckAdmin(req, *key); !s.ok()) return Fail(s);
        auto described = handlers->describe(req.path_params.at("cacheId"));
        if (!described.ok()) return Fail(described.status());
        return HttpResponse::Json(200, Dump(*described));
      },
      cache_may_block);

  router.Add(
      "POST", "/v1/caches/{cacheId}/reembed",
      [handlers, key](const HttpRequest& req) {
        if (Status s = CheckAdmin(req, *key); !s.ok()) return Fail(s);
        json body = req.body.empty() ? json::object()
                                     : json::parse(req.body, nullptr, /*allow_exceptions=*/false);
        if (body.is_discarded() || !body.is_object()) {
          Status s = InvalidArgument("request body must be a JSON object of embedder settings");
          s.WithField("body", "object", "not a JSON object");
          return Fail(s);
        }
        auto started = handlers->reembed(req.path_params.at("cacheId"), body);
        if (!started.ok()) return Fail(started.status());
        return HttpResponse::Json(202, Dump(*started));
      },
      /*blocking=*/true);

  router.Add("GET", "/v1/caches/{cacheId}/reembed", [handlers, key](const HttpRequest& req) {
    if (Status s = CheckAdmin(req, *key); !s.ok()) return Fail(s);
    auto status = handlers->reembed_status(req.path_params.at("cacheId"));
    if (!status.ok()) return Fail(status.status());
    return HttpResponse::Json(200, Dump(*status));
  });

  router.Add(
      "DELETE", "/v1/caches/{cacheId}",
      [handlers, key](const HttpRequest& req) {
        if (Status s = CheckAdmin(req, *key); !s.ok()) return Fail(s);
        if (Status s = handlers->remove(req.path_params.at("cacheId")); !s.ok()) return Fail(s);
        return HttpResponse::Json(204, "");
      },
      /*blocking=*/true);
}

}  // namespace semcached::server
