// Blocking one-shot checks against a Redis server: reachability and version.
//
// Used at start-up (`semcached version`) and by /readyz. Each call opens its own connection
// with the given timeout and closes it; the pooled asynchronous client is separate.
#pragma once

#include <string>

#include "common/status.h"

namespace semcached::redis {

struct RedisAddress {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string username;
  std::string password;
  int db = 0;
  bool tls = false;
};

// Parses redis://[user[:password]@]host[:port][/db] (and rediss:// for TLS).
Result<RedisAddress> ParseRedisUrl(const std::string& url);

// PING; Ok when the server answers PONG.
Status Ping(const RedisAddress& address, int timeout_ms);

// The server's redis_version from INFO server.
Result<std::string> ServerVersion(const RedisAddress& address, int timeout_ms);

}  // namespace semcached::redis
