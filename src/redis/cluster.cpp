#include "redis/cluster.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include <spdlog/spdlog.h>

namespace semcached::redis {

namespace {

// CRC16/XMODEM (polynomial 0x1021, initial value 0), as the Cluster specification defines.
std::uint16_t Crc16(std::string_view data) {
  std::uint16_t crc = 0;
  for (unsigned char byte : data) {
    crc ^= static_cast<std::uint16_t>(byte << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<std::uint16_t>(crc << 1);
    }
  }
  return crc;
}

// Whether `command` is one of `names` (upper case), in any case; no allocation, since every
// command sent to the cluster is looked up.
template <std::size_t N>
bool IsOneOf(const std::string& command, const char* const (&names)[N]) {
  return std::any_of(std::begin(names), std::end(names), [&](const char* name) {
    const std::size_t n = std::strlen(name);
    if (command.size() != n) return false;
    for (std::size_t i = 0; i < n; ++i)
      if (std::toupper(static_cast<unsigned char>(command[i])) != name[i]) return false;
    return true;
  });
}

bool IsKeyless(const std::string& command) {
  static const char* const kKeyless[] = {"PING",     "ECHO",    "INFO",    "CLUSTER", "CLIENT",
                                         "CONFIG",   "TIME",    "COMMAND", "ACL",     "DBSIZE",
                                         "FLUSHALL", "FLUSHDB", "HELLO",   "AUTH",    "SELECT"};
  return IsOneOf(command, kKeyless);
}

// The slot a command goes to: its first key's. Scripts name their keys after the script and
// the key count (EVAL script numkeys key...); a keyless command (MULTI and EXEC too, having no
// arguments) goes anywhere (-1).
int SlotOf(const Args& args) {
  static const char* const kScripts[] = {"EVAL",  "EVALSHA",  "EVAL_RO",
                                         "FCALL", "FCALL_RO", "EVALSHA_RO"};
  if (args.size() < 2 || IsKeyless(args[0])) return -1;
  if (IsOneOf(args[0], kScripts)) return args.size() >= 4 && args[2] != "0" ? KeySlot(args[3]) : -1;
  return KeySlot(args[1]);
}

// "MOVED 3999 127.0.0.1:6381" / "ASK 3999 127.0.0.1:6381"; an empty host means "the node that
// answered", which for us is the configured host.
bool ParseRedirect(const std::string& error, int* slot, std::string* host, int* port) {
  auto first = error.find(' ');
  auto second = error.find(' ', first + 1);
  if (first == std::string::npos || second == std::string::npos) return false;
  std::string_view slot_text(error.data() + first + 1, second - first - 1);
  std::string_view address(error.data() + second + 1, error.size() - second - 1);
  auto colon = address.rfind(':');
  if (colon == std::string_view::npos) return false;
  auto [p1, e1] = std::from_chars(slot_text.data(), slot_text.data() + slot_text.size(), *slot);
  std::string_view port_text = address.substr(colon + 1);
  auto [p2, e2] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), *port);
  if (e1 != std::errc() || e2 != std::errc() || *slot < 0 || *slot >= 16384) return false;
  *host = std::string(address.substr(0, colon));
  return true;
}

}  // namespace

std::uint16_t KeySlot(std::string_view key) {
  auto open = key.find('{');
  if (open != std::string_view::npos) {
    auto close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1)
      key = key.substr(open + 1, close - open - 1);
  }
  return Crc16(key) & 16383;
}

ClusterClient::ClusterClient(const ClientOptions& options, ClientObserver* observer)
    : options_(options), observer_(observer) {}

ClusterClient::~ClusterClient() {
  // Shut every pool down before destroying any: a callback on one node's thread may still
  // redirect to another node, which must then exist (and refuse, since it is shutting down).
  for (auto& n : nodes_) n->client->Shutdown(std::chrono::milliseconds(500));
}

Result<std::unique_ptr<ClusterClient>> ClusterClient::Create(const ClientOptions& options,
                                                             const std::vector<std::string>& seeds,
                                                             ClientObserver* observer) {
  if (seeds.empty()) return InvalidArgument("redis cluster: no seed nodes");
  if (options.db != 0) return InvalidArgument("redis cluster: only database 0 exists in a cluster");
  std::unique_ptr<ClusterClient> cluster(new ClusterClient(options, observer));
  Status last = Unavailable("redis cluster: no seed answered");
  for (const auto& seed : seeds) {
    auto colon = seed.rfind(':');
    int port = 0;
    if (colon == std::string::npos ||
        std::from_chars(seed.data() + colon + 1, seed.data() + seed.size(), port).ec !=
            std::errc()) {
      return InvalidArgument("redis cluster: seed '" + seed + "' is not host:port");
    }
    Client* client;
    {
      std::lock_guard lock(cluster->mu_);
      client = cluster->NodeFor(seed.substr(0, colon), port);
    }
    if (client == nullptr) continue;
    last = cluster->LoadSlots(*client);
    if (last.ok()) return cluster;
  }
  return last;
}

Client* ClusterClient::NodeFor(const std::string& host_in, int port) {
  const std::string host = host_in.empty() ? options_.host : host_in;
  for (auto& n : nodes_) {
    if (n->host == host && n->port == port) return n->client.get();
  }
  ClientOptions o = options_;
  o.host = host;
  o.port = port;
  auto client = Client::Create(o, observer_);
  if (!client.ok()) {
    spdlog::error("redis cluster: cannot create a client for {}:{}: {}", host, port,
                  client.status().message());
    return nullptr;
  }
  auto node = std::make_unique<Node>();
  node->host = host;
  node->port = port;
  node->client = std::move(*client);
  nodes_.push_back(std::move(node));
  return nodes_.back()->client.get();
}

Status ClusterClient::LoadSlots(Client& from) {
  auto reply = from.Execute({"CLUSTER", "SLOTS"});
  if (!reply.ok()) return reply.status();
  if (reply->IsError()) return Unavailable("redis CLUSTER SLOTS: " + reply->str);
  std::lock_guard lock(mu_);
  std::array<Client*, 16384> slots{};
  for (const auto& range : reply->elements) {
    if (range.elements.size() < 3 || !range.elements[2].IsAggregate() ||
        range.elements[2].elements.size() < 2) {
      return Unavailable("redis CLUSTER SLOTS: unexpected reply");
    }
    auto start = range.elements[0].AsInteger();
    auto end = range.elements[1].AsInteger();
    auto port = range.elements[2].elements[1].AsInteger();
    if (!start.ok() || !end.ok() || !port.ok() || *start < 0 || *end >= 16384 || *start > *end) {
      return Unavailable("redis CLUSTER SLOTS: unexpected slot range");
    }
    Client* master = NodeFor(range.elements[2].elements[0].str, static_cast<int>(*port));
    for (long long s = *start; s <= *end; ++s) slots[static_cast<std::size_t>(s)] = master;
  }
  slots_ = slots;
  refreshes_.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

Status ClusterClient::RefreshSlots() {
  std::vector<Client*> candidates;
  {
    std::lock_guard lock(mu_);
    for (auto& n : nodes_) candidates.push_back(n->client.get());
  }
  Status last = Unavailable("redis cluster: no node known");
  for (Client* c : candidates) {
    last = LoadSlots(*c);
    if (last.ok()) return last;
  }
  return last;
}

Client* ClusterClient::ClientForSlot(int slot) {
  std::lock_guard lock(mu_);
  if (slot >= 0 && slots_[static_cast<std::size_t>(slot)] != nullptr)
    return slots_[static_cast<std::size_t>(slot)];
  // Unknown slot or keyless command: any node; a wrong guess comes back as MOVED.
  return nodes_.empty() ? nullptr : nodes_.front()->client.get();
}

void ClusterClient::ExecuteAsync(Args args, Callback done, CommandOptions options) {
  Send(std::move(args), std::move(done), options, 0);
}

void ClusterClient::Send(Args args, Callback done, CommandOptions options, int redirects) {
  const int slot = SlotOf(args);
  Client* client = ClientForSlot(slot);
  if (client == nullptr) return done(Unavailable("redis cluster: no node known"));
  auto shared = std::make_shared<Args>(std::move(args));
  client->ExecuteAsync(
      *shared,
      [this, shared, done = std::move(done), options, redirects](Result<Reply> r) mutable {
        if (!r.ok() || !r->IsError() || redirects >= 5) return done(std::move(r));
        const bool moved = r->str.rfind("MOVED ", 0) == 0;
        const bool ask = r->str.rfind("ASK ", 0) == 0;
        int slot = 0, port = 0;
        std::string host;
        if ((!moved && !ask) || !ParseRedirect(r->str, &slot, &host, &port))
          return done(std::move(r));
        Client* target;
        {
          std::lock_guard lock(mu_);
          target = NodeFor(host, port);
          if (moved && target != nullptr) slots_[static_cast<std::size_t>(slot)] = target;
        }
        if (target == nullptr) return done(std::move(r));
        if (moved) {
          moved_.fetch_add(1, std::memory_order_relaxed);
          return Send(std::move(*shared), std::move(done), options, redirects + 1);
        }
        ask_.fetch_add(1, std::memory_order_relaxed);
        target->ExecuteGroupAsync({{"ASKING"}, std::move(*shared)}, std::move(done), options);
      },
      options);
}

void ClusterClient::ExecuteGroupAsync(std::vector<Args> commands, Callback done,
                                      CommandOptions options) {
  int slot = -1;
  for (const auto& c : commands) {
    slot = SlotOf(c);
    if (slot >= 0) break;
  }
  Client* client = ClientForSlot(slot);
  if (client == nullptr) return done(Unavailable("redis cluster: no node known"));
  client->ExecuteGroupAsync(
      std::move(commands),
      [this, done = std::move(done)](Result<Reply> r) mutable {
        // A group reports its first error reply: a MOVED there updates the map for next time.
        int moved_slot = 0, port = 0;
        std::string host;
        if (r.ok() && r->IsError() && r->str.rfind("MOVED ", 0) == 0 &&
            ParseRedirect(r->str, &moved_slot, &host, &port)) {
          std::lock_guard lock(mu_);
          if (Client* target = NodeFor(host, port))
            slots_[static_cast<std::size_t>(moved_slot)] = target;
          moved_.fetch_add(1, std::memory_order_relaxed);
        }
        done(std::move(r));
      },
      options);
}

ClusterStats ClusterClient::Stats() const {
  ClusterStats s;
  {
    std::lock_guard lock(mu_);
    std::vector<Client*> masters(slots_.begin(), slots_.end());
    std::sort(masters.begin(), masters.end());
    masters.erase(std::unique(masters.begin(), masters.end()), masters.end());
    masters.erase(std::remove(masters.begin(), masters.end(), nullptr), masters.end());
    s.masters = masters.size();
  }
  s.moved = moved_.load();
  s.ask = ask_.load();
  s.slot_refreshes = refreshes_.load();
  return s;
}

std::vector<std::pair<std::string, ClientStats>> ClusterClient::NodeStats() const {
  std::lock_guard lock(mu_);
  std::vector<std::pair<std::string, ClientStats>> out;
  for (const auto& n : nodes_)
    out.emplace_back(n->host + ":" + std::to_string(n->port), n->client->Stats());
  return out;
}

}  // namespace semcached::redis
