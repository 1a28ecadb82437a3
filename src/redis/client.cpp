#include "redis/client.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <random>
#include <thread>

#include <hiredis/hiredis.h>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <list>

#include <spdlog/spdlog.h>

#include "common/enum_names.h"
#include "common/tracing.h"
#include "redis/probe.h"

namespace semcached::redis {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

const char* FailureKindName(FailureKind k) {
  static constexpr EnumName<FailureKind> kNames[] = {{FailureKind::kNone, "none"},
                                                     {FailureKind::kConnect, "connect"},
                                                     {FailureKind::kIo, "io"},
                                                     {FailureKind::kTimeout, "timeout"},
                                                     {FailureKind::kCircuitOpen, "circuit_open"},
                                                     {FailureKind::kShutdown, "shutdown"},
                                                     {FailureKind::kServer, "server"}};
  return NameOf(kNames, k);
}

const char* BreakerStateName(BreakerState s) {
  static constexpr EnumName<BreakerState> kNames[] = {{BreakerState::kClosed, "closed"},
                                                      {BreakerState::kOpen, "open"},
                                                      {BreakerState::kHalfOpen, "half_open"}};
  return NameOf(kNames, s);
}

namespace {

struct Op {
  std::string payload;  // the command in RESP, formatted by hiredis
  std::string name;     // upper-case command name, for metrics and messages
  Clock::time_point submitted;
  Clock::time_point deadline;
  int attempt = 0;
  bool idempotent = true;
  bool written = false;   // handed to a socket: the server may have executed it
  bool internal = false;  // a connection's own handshake: no retry, no metrics
  int replies = 1;        // commands in the payload (a group); the last reply completes it
  int remaining = 1;      // replies still to come in the current attempt
  std::optional<Reply> first_error;
  Callback done;
};
using OpPtr = std::shared_ptr<Op>;

Reply ConvertReply(const redisReply* r) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_STRING: out.type = ReplyType::kString; break;
    case REDIS_REPLY_STATUS: out.type = ReplyType::kStatus; break;
    case REDIS_REPLY_ERROR: out.type = ReplyType::kError; break;
    case REDIS_REPLY_INTEGER: out.type = ReplyType::kInteger; break;
    case REDIS_REPLY_DOUBLE: out.type = ReplyType::kDouble; break;
    case REDIS_REPLY_BOOL: out.type = ReplyType::kBool; break;
    case REDIS_REPLY_ARRAY: out.type = ReplyType::kArray; break;
    case REDIS_REPLY_MAP: out.type = ReplyType::kMap; break;
    case REDIS_REPLY_SET: out.type = ReplyType::kSet; break;
    case REDIS_REPLY_PUSH: out.type = ReplyType::kPush; break;
    case REDIS_REPLY_VERB: out.type = ReplyType::kVerbatim; break;
    case REDIS_REPLY_BIGNUM: out.type = ReplyType::kBigNumber; break;
    default: out.type = ReplyType::kNil; break;
  }
  if (r->str != nullptr) out.str.assign(r->str, r->len);
  out.integer = r->integer;
  out.number = r->dval;
  if (r->type == REDIS_REPLY_ARRAY || r->type == REDIS_REPLY_MAP || r->type == REDIS_REPLY_SET ||
      r->type == REDIS_REPLY_PUSH) {
    out.elements.reserve(r->elements);
    for (std::size_t i = 0; i < r->elements; ++i)
      out.elements.push_back(ConvertReply(r->element[i]));
  }
  return out;
}

std::string FormatCommand(const Args& args) {
  std::vector<const char*> argv(args.size());
  std::vector<std::size_t> lens(args.size());
  for (std::size_t i = 0; i < args.size(); ++i) {
    argv[i] = args[i].data();
    lens[i] = args[i].size();
  }
  char* raw = nullptr;
  long long n =
      redisFormatCommandArgv(&raw, static_cast<int>(args.size()), argv.data(), lens.data());
  std::string out;
  if (n > 0 && raw != nullptr) out.assign(raw, static_cast<std::size_t>(n));
  redisFreeCommand(raw);
  return out;
}

std::string CommandName(const Args& args) {
  std::string name = args.empty() ? std::string() : args[0].substr(0, 32);
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

}  // namespace

class Connection;

class Client::Impl : public std::enable_shared_from_this<Client::Impl> {
 public:
  Impl(const ClientOptions& options, ClientObserver* observer)
      : options_(options),
        observer_(observer),
        breaker_(options.breaker_failures, options.breaker_open_ms),
        tick_(io_),
        tls_context_(ssl::context::tls_client),
        rng_(std::random_device{}()) {}

  Status Start();
  void Submit(std::vector<Args> commands, Callback done, CommandOptions options);
  void Shutdown(milliseconds drain);
  ClientStats Stats() const;

  // Called by connections, on the I/O thread.
  void OnReady(Connection* c);
  void OnClosed(Connection* c, bool was_ready, FailureKind kind);
  void Complete(const OpPtr& op, Reply reply);
  void Fail(const OpPtr& op, FailureKind kind, Status status);
  void AddBytes(std::size_t sent, std::size_t received) {
    if (sent) bytes_sent_.fetch_add(sent, std::memory_order_relaxed);
    if (received) bytes_received_.fetch_add(received, std::memory_order_relaxed);
  }
  void AddInFlight(std::ptrdiff_t n) {
    in_flight_.fetch_add(static_cast<std::size_t>(n), std::memory_order_relaxed);
  }

  asio::io_context& io() { return io_; }
  ssl::context& tls_context() { return tls_context_; }
  const ClientOptions& options() const { return options_; }

 private:
  void Dispatch(const OpPtr& op);
  void OpenConnection();
  void Tick();
  void ScheduleTick();
  void FailWaiting(FailureKind kind, const Status& status);
  void Finish(const OpPtr& op, FailureKind kind, Result<Reply> result);
  void RefreshGauges();
  Connection* Pick();
  int BackoffMs(int attempt);

  ClientOptions options_;
  ClientObserver* observer_;
  asio::io_context io_;  // first member: handlers it holds die last
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread thread_;
  CircuitBreaker breaker_;
  asio::steady_timer tick_;
  ssl::context tls_context_;
  std::minstd_rand rng_;

  std::vector<std::shared_ptr<Connection>> connections_;  // connecting and ready
  std::deque<OpPtr> waiting_;
  std::list<std::shared_ptr<asio::steady_timer>> retry_timers_;  // cancelled at shutdown
  std::mutex shutdown_mu_;
  std::uint64_t next_connection_id_ = 1;
  int connect_failures_in_row_ = 0;
  Clock::time_point next_connect_at_{};

  std::atomic<bool> shutting_down_{false};
  std::atomic<bool> stopped_{false};
  std::atomic<std::size_t> in_flight_{0};
  std::atomic<std::size_t> pending_{0};  // submitted and not yet finished
  std::atomic<std::size_t> ready_{0};
  std::atomic<std::size_t> busy_{0};
  std::atomic<std::size_t> waiting_count_{0};
  std::atomic<std::uint8_t> breaker_state_{0};
  std::atomic<std::uint64_t> commands_{0};
  std::atomic<std::uint64_t> retries_{0};
  std::atomic<std::uint64_t> failures_{0};
  std::atomic<std::uint64_t> breaker_opened_{0};
  std::atomic<std::uint64_t> connects_{0};
  std::atomic<std::uint64_t> bytes_sent_{0}, bytes_received_{0};
};

// One socket, its hiredis reader, and the commands in flight on it, in the order written.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Client::Impl& pool, std::uint64_t id)
      : pool_(pool),
        id_(id),
        stream_(pool.io(), pool.tls_context()),
        timer_(pool.io()),
        resolver_(pool.io()),
        reader_(redisReaderCreate()) {}
  ~Connection() { redisReaderFree(reader_); }

  void Start() {
    const auto& o = pool_.options();
    timer_.expires_after(milliseconds(o.connect_timeout_ms));
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec && !self->ready_)
        self->Close(FailureKind::kConnect, Unavailable(self->Where() + ": connect timed out"));
    });
    resolver_.async_resolve(
        o.host, std::to_string(o.port),
        [self = shared_from_this()](const boost::system::error_code& ec,
                                    tcp::resolver::results_type results) {
          if (self->closed_) return;
          if (ec)
            return self->Close(FailureKind::kConnect,
                               Unavailable(self->Where() + ": " + ec.message()));
          asio::async_connect(self->stream_.next_layer(), results,
                              [self](const boost::system::error_code& ec2, const tcp::endpoint&) {
                                self->OnConnected(ec2);
                              });
        });
  }

  void Send(const OpPtr& op) {
    op->written = true;
    op->remaining = op->replies;
    op->first_error.reset();
    outbox_ += op->payload;
    in_flight_.push_back(op);
    pool_.AddInFlight(1);
    if (!writing_) Flush();
  }

  // Fails every command in flight: those past their deadline as timeouts, the rest as `kind`.
  void Close(FailureKind kind, const Status& why) {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ignored;
    timer_.cancel();
    resolver_.cancel();
    stream_.next_layer().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.next_layer().close(ignored);
    auto ops = std::move(in_flight_);
    in_flight_.clear();
    pool_.AddInFlight(-static_cast<std::ptrdiff_t>(ops.size()));
    const auto now = Clock::now();
    for (auto& op : ops) {
      if (now >= op->deadline) {
        pool_.Fail(op, FailureKind::kTimeout,
                   Status(ErrorCode::kDeadlineExceeded,
                          "redis " + op->name + ": no reply within the timeout"));
      } else {
        pool_.Fail(op, kind, why);
      }
    }
    pool_.OnClosed(this, ready_, kind);
  }

  bool ready() const { return ready_ && !closed_; }
  bool closed() const { return closed_; }
  std::size_t in_flight() const { return in_flight_.size(); }
  // The earliest deadline among commands in flight (they are usually in deadline order).
  bool Overdue(Clock::time_point now) const {
    return std::any_of(in_flight_.begin(), in_flight_.end(),
                       [&](const OpPtr& op) { return now >= op->deadline; });
  }
  std::string Where() const {
    return "redis " + pool_.options().host + ":" + std::to_string(pool_.options().port);
  }

 private:
  void OnConnected(const boost::system::error_code& ec) {
    if (closed_) return;
    if (ec) return Close(FailureKind::kConnect, Unavailable(Where() + ": " + ec.message()));
    boost::system::error_code ignored;
    stream_.next_layer().set_option(tcp::no_delay(true), ignored);
    const auto& o = pool_.options();
    if (!o.tls) return Handshake();
    std::string name = o.tls_server_name.empty() ? o.host : o.tls_server_name;
    SSL_set_tlsext_host_name(stream_.native_handle(), name.c_str());
    if (o.tls_verify_peer) stream_.set_verify_callback(ssl::host_name_verification(name));
    stream_.async_handshake(ssl::stream_base::client, [self = shared_from_this()](
                                                          const boost::system::error_code& ec2) {
      if (self->closed_) return;
      if (ec2)
        return self->Close(FailureKind::kConnect,
                           Unavailable(self->Where() + ": TLS: " + ec2.message()));
      self->Handshake();
    });
  }

  // HELLO/AUTH/SELECT (or a PING when none is needed) pipelined; ready after the last reply.
  void Handshake() {
    const auto& o = pool_.options();
    std::vector<Args> steps;
    if (o.protocol == 3) {
      Args hello{"HELLO", "3"};
      if (!o.password.empty()) {
        hello.insert(hello.end(),
                     {"AUTH", o.username.empty() ? "default" : o.username, o.password});
      }
      steps.push_back(std::move(hello));
    } else if (!o.password.empty()) {
      steps.push_back(o.username.empty() ? Args{"AUTH", o.password}
                                         : Args{"AUTH", o.username, o.password});
    }
    if (o.db != 0) steps.push_back({"SELECT", std::to_string(o.db)});
    if (steps.empty()) steps.push_back({"PING"});
    const auto deadline = Clock::now() + milliseconds(o.connect_timeout_ms);
    for (std::size_t i = 0; i < steps.size(); ++i) {
      auto op = std::make_shared<Op>();
      op->payload = FormatCommand(steps[i]);
      op->name = CommandName(steps[i]);
      op->submitted = Clock::now();
      op->deadline = deadline;
      op->internal = true;
      const bool last = i + 1 == steps.size();
      std::weak_ptr<Connection> weak = shared_from_this();
      op->done = [weak, last](Result<Reply> r) {
        auto self = weak.lock();
        if (!self || self->closed_) return;
        if (!r.ok() || r->IsError()) {
          std::string why = r.ok() ? r->str : r.status().message();
          return self->Close(FailureKind::kConnect,
                             Unavailable(self->Where() + ": handshake refused: " + why));
        }
        if (last) {
          self->ready_ = true;
          self->timer_.cancel();
          self->pool_.OnReady(self.get());
        }
      };
      Send(op);
    }
    Read();
  }

  void Flush() {
    if (outbox_.empty() || closed_) return;
    writing_ = true;
    sending_.swap(outbox_);
    outbox_.clear();
    auto handler = [self = shared_from_this()](const boost::system::error_code& ec,
                                               std::size_t written) {
      self->pool_.AddBytes(written, 0);
      self->writing_ = false;
      self->sending_.clear();
      if (self->closed_) return;
      if (ec)
        return self->Close(FailureKind::kIo,
                           Unavailable(self->Where() + ": write: " + ec.message()));
      self->Flush();
    };
    if (pool_.options().tls) {
      asio::async_write(stream_, asio::buffer(sending_), std::move(handler));
    } else {
      asio::async_write(stream_.next_layer(), asio::buffer(sending_), std::move(handler));
    }
  }

  void Read() {
    auto handler = [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
      if (self->closed_) return;
      if (ec) {
        std::string what = ec == asio::error::eof ? "server closed the connection" : ec.message();
        return self->Close(FailureKind::kIo, Unavailable(self->Where() + ": " + what));
      }
      self->OnBytes(n);
    };
    if (pool_.options().tls) {
      stream_.async_read_some(asio::buffer(buffer_), std::move(handler));
    } else {
      stream_.next_layer().async_read_some(asio::buffer(buffer_), std::move(handler));
    }
  }

  void OnBytes(std::size_t n) {
    pool_.AddBytes(0, n);
    if (redisReaderFeed(reader_, buffer_.data(), n) != REDIS_OK) {
      return Close(FailureKind::kIo, Unavailable(Where() + ": protocol error: " + reader_->errstr));
    }
    auto self = shared_from_this();  // a completion may close this connection
    while (!closed_) {
      void* raw = nullptr;
      if (redisReaderGetReply(reader_, &raw) != REDIS_OK) {
        return Close(FailureKind::kIo,
                     Unavailable(Where() + ": protocol error: " + reader_->errstr));
      }
      if (raw == nullptr) break;
      auto* r = static_cast<redisReply*>(raw);
      Reply reply = ConvertReply(r);
      freeReplyObject(r);
      if (reply.type == ReplyType::kPush) continue;  // out-of-band (RESP3), not an answer
      if (in_flight_.empty()) {
        return Close(FailureKind::kIo, Unavailable(Where() + ": a reply nobody asked for"));
      }
      OpPtr& front = in_flight_.front();
      if (--front->remaining > 0) {  // a group: keep the first error, wait for the rest
        if (reply.IsError() && !front->first_error) front->first_error = std::move(reply);
        continue;
      }
      OpPtr op = std::move(front);
      in_flight_.pop_front();
      pool_.AddInFlight(-1);
      if (op->first_error) reply = std::move(*op->first_error);
      pool_.Complete(op, std::move(reply));
    }
    if (!closed_) Read();
  }

  Client::Impl& pool_;
  std::uint64_t id_;
  ssl::stream<tcp::socket> stream_;
  asio::steady_timer timer_;
  tcp::resolver resolver_;
  redisReader* reader_;
  std::deque<OpPtr> in_flight_;
  std::string outbox_;
  std::string sending_;
  bool writing_ = false;
  bool ready_ = false;
  bool closed_ = false;
  std::array<char, 16384> buffer_{};
};

Status Client::Impl::Start() {
  if (options_.pool_min > options_.pool_max || options_.pool_max == 0) {
    return InvalidArgument("redis pool: need 0 <= pool_min <= pool_max and pool_max >= 1");
  }
  if (options_.protocol != 2 && options_.protocol != 3)
    return InvalidArgument("redis protocol must be 2 or 3");
  if (options_.connect_timeout_ms <= 0 || options_.command_timeout_ms <= 0) {
    return InvalidArgument("redis timeouts must be positive");
  }
  if (options_.tls) {
    boost::system::error_code ec;
    if (options_.tls_ca_file.empty()) {
      tls_context_.set_default_verify_paths(ec);
    } else {
      tls_context_.load_verify_file(options_.tls_ca_file, ec);
    }
    if (ec) return InvalidArgument("redis TLS: cannot load trust anchors: " + ec.message());
    tls_context_.set_verify_mode(options_.tls_verify_peer ? ssl::verify_peer : ssl::verify_none);
  }
  work_.emplace(io_.get_executor());
  thread_ = std::thread([this] { io_.run(); });
  asio::post(io_, [self = shared_from_this()] {
    for (std::size_t i = 0; i < self->options_.pool_min; ++i) self->OpenConnection();
    self->ScheduleTick();
  });
  return Status::Ok();
}

void Client::Impl::Submit(std::vector<Args> commands, Callback done, CommandOptions copts) {
  auto op = std::make_shared<Op>();
  op->name = CommandName(commands.back());
  for (const auto& args : commands) op->payload += FormatCommand(args);
  op->replies = static_cast<int>(commands.size());
  op->submitted = Clock::now();
  const int timeout = copts.timeout_ms > 0 ? copts.timeout_ms : options_.command_timeout_ms;
  op->deadline = op->submitted + milliseconds(timeout);
  op->idempotent = copts.idempotent;
  op->done = std::move(done);
  commands_.fetch_add(1, std::memory_order_relaxed);
  if (shutting_down_.load()) {
    failures_.fetch_add(1, std::memory_order_relaxed);
    if (observer_ != nullptr) observer_->OnCommand(op->name, 0, FailureKind::kShutdown);
    op->done(Unavailable("redis client is shutting down"));
    return;
  }
  pending_.fetch_add(1);
  asio::post(io_, [self = shared_from_this(), op] { self->Dispatch(op); });
}

Connection* Client::Impl::Pick() {
  Connection* best = nullptr;
  std::size_t opening = 0;
  for (auto& c : connections_) {
    if (!c->ready()) {
      ++opening;
      continue;
    }
    if (best == nullptr || c->in_flight() < best->in_flight()) best = c.get();
  }
  const bool deep = best == nullptr || best->in_flight() >= options_.pipeline_depth;
  if (deep && opening == 0 && connections_.size() < options_.pool_max &&
      Clock::now() >= next_connect_at_) {
    OpenConnection();
  }
  return best;
}

void Client::Impl::Dispatch(const OpPtr& op) {
  if (stopped_.load()) {
    return Finish(op, FailureKind::kShutdown, Unavailable("redis client is shutting down"));
  }
  const auto now = Clock::now();
  if (!breaker_.AllowsTraffic(now)) {
    return Finish(op, FailureKind::kCircuitOpen,
                  Unavailable("redis " + options_.host + ":" + std::to_string(options_.port) +
                              ": circuit breaker open after repeated failures"));
  }
  if (Connection* c = Pick()) {
    c->Send(op);
  } else {
    waiting_.push_back(op);
    waiting_count_.store(waiting_.size(), std::memory_order_relaxed);
  }
}

void Client::Impl::OpenConnection() {
  auto c = std::make_shared<Connection>(*this, next_connection_id_++);
  connections_.push_back(c);
  connects_.fetch_add(1, std::memory_order_relaxed);
  c->Start();
}

void Client::Impl::OnReady(Connection* c) {
  connect_failures_in_row_ = 0;
  breaker_.RecordSuccess();
  breaker_state_.store(static_cast<std::uint8_t>(BreakerState::kClosed));
  while (!waiting_.empty() && c->ready()) {
    OpPtr op = std::move(waiting_.front());
    waiting_.pop_front();
    c->Send(op);
  }
  waiting_count_.store(waiting_.size(), std::memory_order_relaxed);
  RefreshGauges();
}

void Client::Impl::OnClosed(Connection* c, bool was_ready, FailureKind kind) {
  auto it =
      std::find_if(connections_.begin(), connections_.end(), [&](auto& p) { return p.get() == c; });
  std::shared_ptr<Connection> keep;  // the caller is still inside this connection
  if (it != connections_.end()) {
    keep = *it;
    connections_.erase(it);
  }
  if (kind == FailureKind::kShutdown) return;
  const auto now = Clock::now();
  if (!was_ready) {
    ++connect_failures_in_row_;
    const int wait = std::min(options_.breaker_open_ms,
                              options_.retry_base_ms << std::min(connect_failures_in_row_, 10));
    next_connect_at_ = now + milliseconds(wait);
  }
  if (breaker_.RecordFailure(now)) {
    breaker_opened_.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("redis {}:{}: circuit breaker opened after repeated failures", options_.host,
                 options_.port);
  }
  breaker_state_.store(static_cast<std::uint8_t>(breaker_.State(now)));
  // Commands waiting for a connection: try another one, or give up if none can come.
  const bool any_usable =
      std::any_of(connections_.begin(), connections_.end(), [](auto& p) { return !p->closed(); });
  if (!breaker_.AllowsTraffic(now)) {
    FailWaiting(FailureKind::kCircuitOpen,
                Unavailable("redis: circuit breaker open after repeated failures"));
  } else if (!any_usable && !waiting_.empty()) {
    FailWaiting(was_ready ? FailureKind::kIo : FailureKind::kConnect,
                Unavailable("redis " + options_.host + ":" + std::to_string(options_.port) +
                            ": cannot connect"));
  }
  RefreshGauges();
}

void Client::Impl::FailWaiting(FailureKind kind, const Status& status) {
  auto ops = std::move(waiting_);
  waiting_.clear();
  waiting_count_.store(0, std::memory_order_relaxed);
  for (auto& op : ops) Fail(op, kind, status);
}

void Client::Impl::Complete(const OpPtr& op, Reply reply) {
  breaker_.RecordSuccess();
  if (op->internal) return op->done(std::move(reply));
  if (reply.IsError() && IsTransientServerError(reply.str)) {
    return Fail(op, FailureKind::kServer, Unavailable("redis " + op->name + ": " + reply.str));
  }
  const FailureKind kind = reply.IsError() ? FailureKind::kServer : FailureKind::kNone;
  Finish(op, kind, std::move(reply));
}

int Client::Impl::BackoffMs(int attempt) {
  const int cap = std::min(options_.retry_max_ms, options_.retry_base_ms << std::min(attempt, 16));
  return std::uniform_int_distribution<int>(0, std::max(cap, 1))(rng_);
}

void Client::Impl::Fail(const OpPtr& op, FailureKind kind, Status status) {
  if (op->internal) return op->done(std::move(status));
  const auto now = Clock::now();
  // Sent again only when that cannot do harm: never written, idempotent, or refused unexecuted.
  const bool safe = !op->written || op->idempotent || kind == FailureKind::kServer;
  const bool transient =
      kind == FailureKind::kConnect || kind == FailureKind::kIo || kind == FailureKind::kServer;
  if (transient && safe && op->attempt < options_.max_retries && !shutting_down_.load()) {
    const int delay = BackoffMs(op->attempt);
    if (now + milliseconds(delay) < op->deadline) {
      ++op->attempt;
      op->written = false;
      retries_.fetch_add(1, std::memory_order_relaxed);
      if (observer_ != nullptr) observer_->OnRetry(op->name);
      auto timer = retry_timers_.insert(
          retry_timers_.end(), std::make_shared<asio::steady_timer>(io_, milliseconds(delay)));
      (*timer)->async_wait(
          [self = shared_from_this(), op, timer](const boost::system::error_code&) {
            self->retry_timers_.erase(timer);
            self->Dispatch(op);
          });
      return;
    }
  }
  Finish(op, kind, std::move(status));
}

void Client::Impl::Finish(const OpPtr& op, FailureKind kind, Result<Reply> result) {
  if (kind != FailureKind::kNone && kind != FailureKind::kServer)
    failures_.fetch_add(1, std::memory_order_relaxed);
  if (observer_ != nullptr) {
    observer_->OnCommand(op->name,
                         std::chrono::duration<double>(Clock::now() - op->submitted).count(), kind);
  }
  Callback done = std::move(op->done);
  if (done) done(std::move(result));
  pending_.fetch_sub(1);
}

void Client::Impl::ScheduleTick() {
  const int ms = std::clamp(options_.command_timeout_ms / 10, 1, 50);
  tick_.expires_after(milliseconds(ms));
  tick_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec || self->stopped_.load()) return;
    self->Tick();
    self->ScheduleTick();
  });
}

void Client::Impl::Tick() {
  const auto now = Clock::now();
  // A connection with an overdue command is presumed stuck: closing it fails that command
  // with a timeout and lets the idempotent others go elsewhere.
  std::vector<std::shared_ptr<Connection>> overdue;
  for (auto& c : connections_) {
    if (c->Overdue(now)) overdue.push_back(c);
  }
  for (auto& c : overdue)
    c->Close(FailureKind::kTimeout, Unavailable(c->Where() + ": closed after a command timed out"));
  while (!waiting_.empty() && now >= waiting_.front()->deadline) {
    OpPtr op = std::move(waiting_.front());
    waiting_.pop_front();
    Finish(op, FailureKind::kTimeout,
           Status(ErrorCode::kDeadlineExceeded,
                  "redis " + op->name + ": no connection within the timeout"));
  }
  waiting_count_.store(waiting_.size(), std::memory_order_relaxed);
  // Half-open: one probe connection; its handshake is the probe.
  if (breaker_.TakeProbe(now)) {
    OpenConnection();
  } else if (breaker_.AllowsTraffic(now) && !shutting_down_.load() && now >= next_connect_at_) {
    std::size_t opening = 0;
    for (auto& c : connections_) opening += c->ready() ? 0 : 1;
    const bool short_of_min = connections_.size() < options_.pool_min;
    const bool stranded = !waiting_.empty() && connections_.size() < options_.pool_max;
    if (opening == 0 && (short_of_min || stranded)) OpenConnection();
  }
  breaker_state_.store(static_cast<std::uint8_t>(breaker_.State(now)));
  RefreshGauges();
}

void Client::Impl::RefreshGauges() {
  std::size_t ready = 0, busy = 0;
  for (auto& c : connections_) {
    if (!c->ready()) continue;
    ++ready;
    if (c->in_flight() > 0) ++busy;
  }
  ready_.store(ready, std::memory_order_relaxed);
  busy_.store(busy, std::memory_order_relaxed);
}

void Client::Impl::Shutdown(milliseconds drain) {
  std::lock_guard lock(shutdown_mu_);
  shutting_down_.store(true);
  if (!thread_.joinable()) return;
  const auto until = Clock::now() + drain;
  while (pending_.load() > 0 && Clock::now() < until) std::this_thread::sleep_for(milliseconds(2));
  std::promise<void> closed;
  asio::post(io_, [this, &closed] {
    stopped_.store(true);
    tick_.cancel();
    FailWaiting(FailureKind::kShutdown, Unavailable("redis client is shutting down"));
    auto conns = connections_;
    for (auto& c : conns)
      c->Close(FailureKind::kShutdown, Unavailable("redis client is shutting down"));
    connections_.clear();
    // Their handlers run once more, see stopped_, and fail their commands.
    for (auto& t : retry_timers_) t->cancel();
    closed.set_value();
  });
  closed.get_future().wait();
  work_.reset();  // run() returns when the cancelled handlers have run
  thread_.join();
}

ClientStats Client::Impl::Stats() const {
  ClientStats s;
  s.connections = ready_.load();
  s.connections_busy = busy_.load();
  s.in_flight = in_flight_.load();
  s.waiting = waiting_count_.load();
  s.breaker = static_cast<BreakerState>(breaker_state_.load());
  s.commands = commands_.load();
  s.retries = retries_.load();
  s.failures = failures_.load();
  s.breaker_opened = breaker_opened_.load();
  s.connects = connects_.load();
  s.bytes_sent = bytes_sent_.load();
  s.bytes_received = bytes_received_.load();
  return s;
}

Result<std::unique_ptr<Client>> Client::Create(const ClientOptions& options,
                                               ClientObserver* observer) {
  auto impl = std::make_shared<Impl>(options, observer);
  Status s = impl->Start();
  if (!s.ok()) return s;
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Client::Client(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() { impl_->Shutdown(milliseconds(500)); }

void Client::ExecuteAsync(Args args, Callback done, CommandOptions options) {
  std::vector<Args> one;
  one.push_back(std::move(args));
  impl_->Submit(std::move(one), std::move(done), options);
}

void Client::ExecuteGroupAsync(std::vector<Args> commands, Callback done, CommandOptions options) {
  if (commands.empty()) return done(InvalidArgument("redis: an empty command group"));
  impl_->Submit(std::move(commands), std::move(done), options);
}

namespace {

// A client span per blocking call, by OpenTelemetry's database conventions: the command's name,
// never its arguments (they hold prompts, vectors and keys).
void DescribeCall(tracing::Span& span, std::string_view operation, std::size_t batch) {
  if (!span.recording()) return;
  span.Set("db.system.name", "redis");
  span.Set("db.operation.name", std::string(operation));
  if (batch > 1) span.Set("db.operation.batch.size", batch);
}

void EndCall(tracing::Span& span, const Result<Reply>& r) {
  if (!r.ok())
    span.SetError(r.status().message());
  else if (r->IsError())
    span.SetError(r->str);
}

}  // namespace

Result<Reply> Executor::Execute(Args args, CommandOptions options) {
  tracing::Span span(args.empty() ? "redis" : args[0], tracing::SpanKind::kClient);
  DescribeCall(span, args.empty() ? "" : args[0], 1);
  auto r = ExecuteUntraced(std::move(args), options);
  EndCall(span, r);
  return r;
}

Result<Reply> Executor::ExecuteUntraced(Args args, CommandOptions options) {
  std::promise<Result<Reply>> promise;
  auto future = promise.get_future();
  ExecuteAsync(
      std::move(args), [&promise](Result<Reply> r) { promise.set_value(std::move(r)); }, options);
  return future.get();
}

std::vector<Result<Reply>> Executor::ExecuteMany(std::vector<Args> commands,
                                                 CommandOptions options) {
  tracing::Span span("PIPELINE", tracing::SpanKind::kClient);
  DescribeCall(span, commands.empty() || commands[0].empty() ? "PIPELINE" : commands[0][0],
               commands.size());
  struct Batch {
    std::mutex mu;
    std::condition_variable cv;
    std::size_t left;
    std::vector<std::optional<Result<Reply>>> results;
  };
  auto batch = std::make_shared<Batch>();
  batch->left = commands.size();
  batch->results.resize(commands.size());
  for (std::size_t i = 0; i < commands.size(); ++i) {
    ExecuteAsync(
        std::move(commands[i]),
        [batch, i](Result<Reply> r) {
          std::lock_guard lock(batch->mu);
          batch->results[i].emplace(std::move(r));
          if (--batch->left == 0) batch->cv.notify_all();
        },
        options);
  }
  std::unique_lock lock(batch->mu);
  batch->cv.wait(lock, [&] { return batch->left == 0; });
  std::vector<Result<Reply>> out;
  out.reserve(batch->results.size());
  for (auto& r : batch->results) {
    out.push_back(std::move(*r));
    if (!out.back().ok()) span.SetError(out.back().status().message());
  }
  return out;
}

Result<Reply> Executor::Transaction(std::vector<Args> commands, CommandOptions options) {
  tracing::Span span("MULTI", tracing::SpanKind::kClient);
  DescribeCall(span, "MULTI", commands.size());
  commands.insert(commands.begin(), Args{"MULTI"});
  commands.push_back({"EXEC"});
  std::promise<Result<Reply>> promise;
  auto future = promise.get_future();
  ExecuteGroupAsync(
      std::move(commands), [&promise](Result<Reply> r) { promise.set_value(std::move(r)); },
      options);
  auto r = future.get();
  EndCall(span, r);
  return r;
}

Status Client::HealthCheck(int timeout_ms) {
  CommandOptions o;
  o.timeout_ms = timeout_ms;
  auto r = Execute({"PING"}, o);
  if (!r.ok()) return r.status();
  if (r->IsError()) return Unavailable("redis PING: " + r->str);
  return Status::Ok();
}

void Client::Shutdown(milliseconds drain) { impl_->Shutdown(drain); }
ClientStats Client::Stats() const { return impl_->Stats(); }
const ClientOptions& Client::options() const { return impl_->options(); }

Result<ClientOptions> ClientOptionsFromUrl(const std::string& url) {
  auto address = ParseRedisUrl(url);
  if (!address.ok()) return address.status();
  ClientOptions o;
  o.host = address->host;
  o.port = address->port;
  o.username = address->username;
  o.password = address->password;
  o.db = address->db;
  o.tls = address->tls;
  return o;
}

Result<std::string> MaxmemoryPolicy(Executor& executor) {
  auto r = executor.Execute({"CONFIG", "GET", "maxmemory-policy"});
  if (!r.ok()) return r.status();
  if (r->IsError()) return Unavailable("CONFIG GET maxmemory-policy: " + r->str);
  // RESP2: [name, value]; RESP3: a map, which the reply holds the same way.
  if (r->elements.size() < 2 || !r->elements[1].IsText())
    return Unavailable("CONFIG GET maxmemory-policy: an unexpected reply");
  return r->elements[1].str;
}

bool EvictsKeysWithoutTtl(const std::string& policy) { return policy.rfind("allkeys-", 0) == 0; }

}  // namespace semcached::redis
