// Routes every deployment has: liveness, readiness and metrics.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/router.h"

namespace semcached::server {

// A named backend check for /readyz; Ok means the backend can serve.
struct ReadinessCheck {
  std::string name;
  std::function<Status()> check;
};

// GET /healthz: 200 while the process runs.
// GET /readyz: 200 when every check passes and the server is not draining, else 503.
// GET /metrics: the Prometheus text format.
// `network`: the checks and the metrics' collectors may wait on the network (Redis): the two
// routes then run on the worker pool.
void AddSystemRoutes(Router& router, Metrics& metrics, const HttpServer* server,
                     std::vector<ReadinessCheck> checks, bool network = false);

}  // namespace semcached::server
