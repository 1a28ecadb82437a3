// The HTTP/1.1 server: accepts connections, reads requests within limits and timeouts,
// dispatches them through the Router, and shuts down gracefully.
//
// Built on Boost.Beast over Asio with a fixed pool of I/O threads and one strand per
// connection. Handlers run on the I/O thread that read the request. Limits: header and body
// size (431 and 413 with JSON bodies), a read timeout for a request once started (and for the
// first request of a new connection), an idle timeout between keep-alive requests, a write
// timeout. On Shutdown() the listener closes, idle connections close, and requests in flight
// finish (their responses carry Connection: close) up to the shutdown timeout.
//
// This file knows nothing of caches or vectors; routes are given to it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "server/metrics.h"
#include "server/router.h"
#include "server/server_options.h"

namespace semcached::server {

class HttpServer {
 public:
  HttpServer(ServerOptions options, const Router& router, Metrics& metrics);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens. After success, port() is the bound port.
  Status Listen();
  int port() const;

  // Runs the I/O threads until the server has shut down. When handle_signals is set, SIGINT
  // and SIGTERM start a graceful shutdown.
  void Run(bool handle_signals);

  // Starts a graceful shutdown; safe from any thread, idempotent.
  void Shutdown();

  bool draining() const;

  class Impl;  // opaque: keeps Beast out of every includer

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace semcached::server
