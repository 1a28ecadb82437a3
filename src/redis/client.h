// The asynchronous, pooled, pipelining Redis client every Redis-backed part of semcached uses.
//
// Why it exists: the Redis store sends many small commands (VSIM, VADD, HGET...) from many
// request threads. One connection per request would pay a round trip and a socket each; one
// shared connection would serialize them. Here a pool of connections (min..max) carries
// commands, several in flight per connection (pipelining): a command is written as soon as
// the connection's previous write is done, and replies are matched in order.
//
// What it does not do: parse RESP by hand (hiredis's reader does, RESP2 and RESP3), know any
// command's meaning (the store does), or throw on a request path. Faults are results:
// every command ends with a reply or an error within its timeout, whatever the server does.
//
// Threads: one I/O thread owns every socket and all pool state; callers on any thread post to
// it. Callbacks run on that I/O thread and must not block: in particular they must not call
// the blocking Execute.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "redis/breaker.h"
#include "redis/reply.h"

namespace semcached::redis {

struct ClientOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string username;  // ACL user; empty: AUTH with the password alone
  std::string password;
  int db = 0;
  int protocol = 2;  // 2 (RESP2) or 3 (RESP3, through HELLO 3)
  bool tls = false;
  std::string tls_ca_file;  // empty: the system's trust store
  bool tls_verify_peer = true;
  std::string tls_server_name;  // SNI and certificate name; empty: host

  std::size_t pool_min = 5;
  std::size_t pool_max = 50;
  // Another connection is opened when every open one has this many commands in flight.
  std::size_t pipeline_depth = 32;

  int connect_timeout_ms = 1000;
  int command_timeout_ms = 1000;  // default per call, retries included

  int max_retries = 3;
  int retry_base_ms = 10;  // backoff base; doubled per attempt, full jitter
  int retry_max_ms = 250;

  int breaker_failures = 5;  // consecutive failures that open the breaker
  int breaker_open_ms = 1000;
};

// Why a command ended badly; also the label of the error metric.
enum class FailureKind : std::uint8_t {
  kNone = 0,
  kConnect,      // could not connect or authenticate
  kIo,           // the connection broke with the command in flight
  kTimeout,      // no reply within the command's timeout
  kCircuitOpen,  // failed fast: the breaker is open
  kShutdown,     // the client is shutting down
  kServer,       // an error reply (the call itself succeeded: the reply says why)
};
const char* FailureKindName(FailureKind k);

// Hooks for metrics; called on the I/O thread, so they must be cheap and thread-safe.
class ClientObserver {
 public:
  virtual ~ClientObserver() = default;
  // `command` is the command's name in upper case; seconds from submission to completion.
  virtual void OnCommand(std::string_view command, double seconds, FailureKind outcome) = 0;
  virtual void OnRetry(std::string_view command) = 0;
};

struct ClientStats {
  std::size_t connections = 0;       // open and ready
  std::size_t connections_busy = 0;  // ready with at least one command in flight
  std::size_t in_flight = 0;         // commands written or being written, awaiting a reply
  std::size_t waiting = 0;           // commands waiting for a connection
  BreakerState breaker = BreakerState::kClosed;
  std::uint64_t commands = 0;
  std::uint64_t retries = 0;
  std::uint64_t failures = 0;
  std::uint64_t breaker_opened = 0;
  std::uint64_t connects = 0;
  std::uint64_t bytes_sent = 0, bytes_received = 0;  // RESP on the wire (before TLS)
};

struct CommandOptions {
  int timeout_ms = -1;     // -1: the client's command_timeout_ms
  bool idempotent = true;  // may be sent again after it was written and its reply was lost
};

using Args = std::vector<std::string>;
using Callback = std::function<void(Result<Reply>)>;

// What the stores need from Redis: send commands. A single server (Client) and a cluster
// (ClusterClient, cluster.h) both provide it, so a store runs on either unchanged.
class Executor {
 public:
  virtual ~Executor() = default;
  // Asynchronous: `done` runs exactly once, on an I/O thread; it must not block.
  virtual void ExecuteAsync(Args args, Callback done, CommandOptions options = {}) = 0;
  // Blocking: waits for the reply. Never call from a callback. Traced (common/tracing.h).
  Result<Reply> Execute(Args args, CommandOptions options = {});
  // The same without a span (health checks, probes).
  Result<Reply> ExecuteUntraced(Args args, CommandOptions options = {});
  // Blocking, pipelined: every command is submitted at once; results in order.
  std::vector<Result<Reply>> ExecuteMany(std::vector<Args> commands, CommandOptions options = {});
  // Several commands written together on one connection, as one unit (ASKING + a command,
  // MULTI ... EXEC); `done` gets the last reply, or the first error reply among them. On a
  // cluster, every key of the group must share one slot (one hash tag).
  virtual void ExecuteGroupAsync(std::vector<Args> commands, Callback done,
                                 CommandOptions options = {}) = 0;
  // Blocking MULTI ... EXEC around `commands`: the EXEC reply (one reply per command).
  Result<Reply> Transaction(std::vector<Args> commands, CommandOptions options = {});
};

class Client final : public Executor {
 public:
  // Starts the I/O thread and opens pool_min connections in the background. Fails only on
  // invalid options: an unreachable server is a runtime condition the breaker handles.
  static Result<std::unique_ptr<Client>> Create(const ClientOptions& options,
                                                ClientObserver* observer = nullptr);
  ~Client();  // Shutdown with a short drain
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void ExecuteAsync(Args args, Callback done, CommandOptions options = {}) override;
  void ExecuteGroupAsync(std::vector<Args> commands, Callback done,
                         CommandOptions options = {}) override;

  // PING through the pool; Ok when PONG came back within the timeout.
  Status HealthCheck(int timeout_ms = -1);

  // Refuses new commands, waits up to `drain` for those in flight, fails the rest, closes
  // every connection and stops the I/O thread. Idempotent.
  void Shutdown(std::chrono::milliseconds drain = std::chrono::milliseconds(2000));

  ClientStats Stats() const;
  const ClientOptions& options() const;

  class Impl;

 private:
  explicit Client(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

// Options from a redis:// or rediss:// URL (see probe.h); pool and timeout fields keep their
// defaults.
Result<ClientOptions> ClientOptionsFromUrl(const std::string& url);

// The server's maxmemory-policy (CONFIG GET; an error where CONFIG is not allowed, as on some
// managed services), and whether it may evict keys without a TTL: an allkeys-* policy can
// drop a cache's whole vector set (its index) at once under memory pressure.
Result<std::string> MaxmemoryPolicy(Executor& executor);
bool EvictsKeysWithoutTtl(const std::string& policy);

}  // namespace semcached::redis
