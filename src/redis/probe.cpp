#include "redis/probe.h"

#include <charconv>
#include <memory>

#include <hiredis/hiredis.h>

namespace semcached::redis {
namespace {

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

bool ParseInt(std::string_view s, int* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

Result<ContextPtr> Connect(const RedisAddress& a, int timeout_ms) {
  if (a.tls) return Unavailable("TLS connections are not supported by this probe yet");
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ContextPtr c(redisConnectWithTimeout(a.host.c_str(), a.port, tv));
  if (!c) return Unavailable("cannot allocate a Redis context");
  if (c->err) {
    return Unavailable("cannot connect to Redis at " + a.host + ":" + std::to_string(a.port) +
                       ": " + c->errstr);
  }
  redisSetTimeout(c.get(), tv);
  auto command = [&](const char* fmt, auto... args) -> Status {
    ReplyPtr r(static_cast<redisReply*>(redisCommand(c.get(), fmt, args...)));
    if (!r) return Unavailable(std::string("Redis: ") + c->errstr);
    if (r->type == REDIS_REPLY_ERROR) return Unavailable(std::string("Redis: ") + r->str);
    return Status::Ok();
  };
  if (!a.password.empty()) {
    Status s = a.username.empty() ? command("AUTH %s", a.password.c_str())
                                  : command("AUTH %s %s", a.username.c_str(), a.password.c_str());
    if (!s.ok()) return s;
  }
  if (a.db != 0) {
    Status s = command("SELECT %d", a.db);
    if (!s.ok()) return s;
  }
  return c;
}

}  // namespace

Result<RedisAddress> ParseRedisUrl(const std::string& url) {
  RedisAddress a;
  std::string_view rest(url);
  if (rest.rfind("redis://", 0) == 0) {
    rest.remove_prefix(8);
  } else if (rest.rfind("rediss://", 0) == 0) {
    rest.remove_prefix(9);
    a.tls = true;
  } else {
    return InvalidArgument("Redis URL '" + url + "' must start with redis:// or rediss://");
  }
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view cred = rest.substr(0, at);
    rest.remove_prefix(at + 1);
    if (auto colon = cred.find(':'); colon != std::string_view::npos) {
      a.username = std::string(cred.substr(0, colon));
      a.password = std::string(cred.substr(colon + 1));
    } else {
      a.password = std::string(cred);
    }
  }
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    std::string_view db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db.empty() && (!ParseInt(db, &a.db) || a.db < 0)) {
      return InvalidArgument("Redis URL '" + url + "': database '" + std::string(db) +
                             "' is not a number");
    }
  }
  if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    if (!ParseInt(rest.substr(colon + 1), &a.port) || a.port <= 0 || a.port > 65535) {
      return InvalidArgument("Redis URL '" + url + "': bad port");
    }
    rest = rest.substr(0, colon);
  }
  if (!rest.empty()) a.host = std::string(rest);
  return a;
}

Status Ping(const RedisAddress& address, int timeout_ms) {
  auto c = Connect(address, timeout_ms);
  if (!c.ok()) return c.status();
  ReplyPtr r(static_cast<redisReply*>(redisCommand(c->get(), "PING")));
  if (!r) return Unavailable(std::string("Redis PING: ") + (*c)->errstr);
  if (r->type == REDIS_REPLY_ERROR) return Unavailable(std::string("Redis PING: ") + r->str);
  return Status::Ok();
}

Result<std::string> ServerVersion(const RedisAddress& address, int timeout_ms) {
  auto c = Connect(address, timeout_ms);
  if (!c.ok()) return c.status();
  ReplyPtr r(static_cast<redisReply*>(redisCommand(c->get(), "INFO server")));
  if (!r) return Unavailable(std::string("Redis INFO: ") + (*c)->errstr);
  if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS) {
    return Unavailable("Redis INFO: unexpected reply type");
  }
  std::string_view info(r->str, r->len);
  constexpr std::string_view kKey = "redis_version:";
  auto pos = info.find(kKey);
  if (pos == std::string_view::npos) return Unavailable("Redis INFO has no redis_version");
  auto end = info.find_first_of("\r\n", pos);
  return std::string(info.substr(pos + kKey.size(), end - pos - kKey.size()));
}

}  // namespace semcached::redis
