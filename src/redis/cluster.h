// ClusterClient: the Executor over a Redis Cluster.
//
// Why: one vector set lives on one shard, so growing past one machine means spreading a
// collection's keys (store/sharded_store.h) over the masters of a Redis Cluster. This client
// keeps the slot map (CLUSTER SLOTS), one pooled Client per master, sends each command to
// the master owning its key's slot, and follows redirections: MOVED updates the map and
// resends; ASK sends ASKING and the command together on one connection of the target.
// Must not: guess keys for commands it does not know (keyless commands go to any master), or
// loop on redirections (at most 5 per command).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "redis/client.h"

namespace semcached::redis {

// The Cluster hash slot of a key (CRC16/XMODEM of the key or of its {hash tag}, mod 16384).
std::uint16_t KeySlot(std::string_view key);

struct ClusterStats {
  std::size_t masters = 0;
  std::uint64_t moved = 0;
  std::uint64_t ask = 0;
  std::uint64_t slot_refreshes = 0;
};

class ClusterClient final : public Executor {
 public:
  // `options` gives the per-node pool, timeouts and credentials; host/port are ignored in
  // favour of `seeds` ("host:port"), the first reachable of which provides the slot map.
  static Result<std::unique_ptr<ClusterClient>> Create(const ClientOptions& options,
                                                       const std::vector<std::string>& seeds,
                                                       ClientObserver* observer = nullptr);
  ~ClusterClient() override;

  void ExecuteAsync(Args args, Callback done, CommandOptions options = {}) override;
  // Sent to the master of the first keyed command's slot; no redirection is followed inside
  // a group (a MOVED there fails the group and updates the slot map for the next call).
  void ExecuteGroupAsync(std::vector<Args> commands, Callback done,
                         CommandOptions options = {}) override;

  // Reloads the slot map from any known master.
  Status RefreshSlots();
  ClusterStats Stats() const;
  // Per-node client statistics, "host:port" first.
  std::vector<std::pair<std::string, ClientStats>> NodeStats() const;

 private:
  struct Node {
    std::string host;
    int port = 0;
    std::unique_ptr<Client> client;
  };
  ClusterClient(const ClientOptions& options, ClientObserver* observer);
  Client* NodeFor(const std::string& host, int port);  // creates the node's pool on first use
  Client* ClientForSlot(int slot);
  void Send(Args args, Callback done, CommandOptions options, int redirects);
  Status LoadSlots(Client& from);

  ClientOptions options_;
  ClientObserver* observer_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::array<Client*, 16384> slots_{};
  std::atomic<std::uint64_t> moved_{0};
  std::atomic<std::uint64_t> ask_{0};
  std::atomic<std::uint64_t> refreshes_{0};
};

}  // namespace semcached::redis
