// What the HTTP server (http_server.h) is told at start-up: where to listen, how many threads,
// and its limits and timeouts. A header of its own, so the configuration (app/config.h) can
// hold these options without including Beast.
#pragma once

#include <cstdint>
#include <string>

namespace semcached::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0 picks a free port
  int threads = 0;  // I/O threads; 0 = one per core
  std::int64_t max_header_bytes = 16 * 1024;
  std::int64_t max_body_bytes = 4 * 1024 * 1024;
  int read_timeout_ms = 10'000;  // a started request must arrive within this
  int idle_timeout_ms = 60'000;  // a keep-alive connection may wait this long
  int write_timeout_ms = 10'000;
  int shutdown_timeout_ms = 15'000;  // requests in flight get this long on SIGTERM
  int max_connections = 10'000;
  int worker_threads = 32;  // run blocking routes (upstream LLM calls) off the I/O threads
};

}  // namespace semcached::server
