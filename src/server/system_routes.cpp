#include "server/system_routes.h"

#include <nlohmann/json.hpp>

#include "server/errors.h"

namespace semcached::server {

void AddSystemRoutes(Router& router, Metrics& metrics, const HttpServer* server,
                     std::vector<ReadinessCheck> checks, bool network) {
  router.Add("GET", "/healthz",
             [](const HttpRequest&) { return HttpResponse::Json(200, R"({"status":"ok"})"); });

  router.Add(
      "GET", "/readyz",
      [server, checks = std::move(checks)](const HttpRequest&) {
        nlohmann::json results = nlohmann::json::object();
        bool ready = true;
        if (server != nullptr && server->draining()) {
          ready = false;
          results["server"] = "draining";
        }
        for (const auto& c : checks) {
          Status s = c.check();
          results[c.name] = s.ok() ? std::string("ok") : s.message();
          ready = ready && s.ok();
        }
        nlohmann::json body = {{"status", ready ? "ready" : "not ready"}, {"checks", results}};
        return HttpResponse::Json(ready ? 200 : 503, body.dump());
      },
      network);

  router.Add(
      "GET", "/metrics",
      [&metrics](const HttpRequest&) {
        return HttpResponse::Text(200, metrics.Render(),
                                  "text/plain; version=0.0.4; charset=utf-8");
      },
      network);
}

}  // namespace semcached::server
