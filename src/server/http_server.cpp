#include "server/http_server.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include <spdlog/spdlog.h>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "common/hash.h"
#include "common/tracing.h"
#include "server/errors.h"

namespace semcached::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
constexpr std::size_t kFirstRead = 8192;
constexpr auto kLingerTime = std::chrono::seconds(1);

// A response's bytes, head and body in one buffer written with one call: Beast's serializer
// walks a chain of buffers over a field list built per response, which cost more than the
// cache lookup itself on an exact hit. Header values are our own; CR and LF are replaced all
// the same, so no value can end the head early.
void SerializeResponse(const HttpResponse& res, bool keep_alive, std::string& out) {
  std::size_t size = 128 + res.content_type.size() + res.body.size();
  for (const auto& [name, value] : res.headers) size += name.size() + value.size() + 4;
  out.clear();
  out.reserve(size);
  auto line = [&out](std::string_view name, std::string_view value) {
    out.append(name);
    out.append(": ");
    const std::size_t at = out.size();
    out.append(value);
    for (std::size_t i = at; i < out.size(); ++i) {
      if (out[i] == '\r' || out[i] == '\n') out[i] = ' ';
    }
    out.append("\r\n");
  };
  const auto status = static_cast<unsigned>(res.status);
  out.append("HTTP/1.1 ");
  out.append(std::to_string(status));
  out.push_back(' ');
  const auto reason = http::obsolete_reason(static_cast<http::status>(status));
  out.append(reason.data(), reason.size());
  out.append("\r\nServer: semcached\r\n");
  const bool bodiless = status == 204 || status == 304 || status < 200;
  if (!bodiless) line("Content-Type", res.content_type);
  for (const auto& [name, value] : res.headers) line(name, value);
  if (!keep_alive) out.append("Connection: close\r\n");
  if (!bodiless) line("Content-Length", std::to_string(res.body.size()));
  out.append("\r\n");
  if (!bodiless) out.append(res.body);
}

// A connection keeps its response buffer between requests up to this size.
constexpr std::size_t kKeptResponseBuffer = 64 * 1024;

std::string ToLower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

constexpr const char* kTraceIdHeader = "X-Semcached-Trace-Id";

// The caller's trace context, when its traceparent is valid.
std::optional<tracing::SpanContext> CallerContext(const HttpRequest& req) {
  auto parent = tracing::ParseTraceparent(req.Header("traceparent"));
  if (parent) parent->tracestate = std::string(req.Header("tracestate"));
  return parent;
}

// A request's root span is named by OpenTelemetry's HTTP server convention: "METHOD route".
void DescribeRequest(tracing::Span& span, const HttpRequest& req, const std::string& route) {
  if (!span.recording()) return;
  span.SetName(req.method + " " + route);
  span.Set("http.request.method", req.method);
  span.Set("http.route", route);
}

std::string TraceIdOf(const tracing::Span& span) {
  return LowerHex(span.context().trace_id.data(), span.context().trace_id.size());
}

void EndRequestSpan(tracing::Span& span, HttpResponse& res) {
  span.Set("http.response.status_code", res.status);
  if (res.status >= 500) span.SetError("HTTP " + std::to_string(res.status));
  res.headers.emplace_back(kTraceIdHeader, TraceIdOf(span));
}

}  // namespace

class Session;

// What the request log shows of a target: the path, and only the names of query parameters
// (Gemini clients may put their API key in ?key=, which must never reach a log).
std::string LoggedTarget(const HttpRequest& req) {
  if (req.query.empty()) return req.path;
  std::string out = req.path + "?";
  std::size_t pos = 0;
  while (pos <= req.query.size()) {
    auto amp = req.query.find('&', pos);
    if (amp == std::string::npos) amp = req.query.size();
    auto part = req.query.substr(pos, amp - pos);
    auto eq = part.find('=');
    if (out.back() != '?') out += '&';
    out += eq == std::string::npos ? part : part.substr(0, eq) + "=...";
    pos = amp + 1;
  }
  return out;
}

class HttpServer::Impl {
 public:
  Impl(ServerOptions options, const Router& router, Metrics& metrics)
      : opt(std::move(options)),
        router(router),
        metrics(metrics),
        contexts(MakeContexts(ThreadCount(opt))),
        acceptor(*contexts[0]),
        drain_timer(*contexts[0]),
        retry_timer(*contexts[0]),
        workers(static_cast<std::size_t>(std::max(1, opt.worker_threads))) {
    for (auto& c : contexts) keep_running.emplace_back(c->get_executor());
    metrics.SetWorkerThreads(std::max(1, opt.worker_threads));
  }

  // One io_context per I/O thread, each run by its thread alone (as nginx runs one event loop
  // per worker): a connection stays on the context it was given at accept, so its handlers
  // need no strand and no thread wakes another to hand over work.
  static std::vector<std::unique_ptr<net::io_context>> MakeContexts(int n) {
    std::vector<std::unique_ptr<net::io_context>> out;
    for (int i = 0; i < std::max(1, n); ++i) out.push_back(std::make_unique<net::io_context>(1));
    return out;
  }
  net::io_context& NextContext() {
    return *contexts[next_context.fetch_add(1, std::memory_order_relaxed) % contexts.size()];
  }
  void StopAll() {
    keep_running.clear();
    for (auto& c : contexts) c->stop();
  }

  static int ThreadCount(const ServerOptions& o) {
    if (o.threads > 0) return o.threads;
    return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }

  Status Listen();
  void Accept();
  void Shutdown();
  void CheckDrained();

  void Register(Session* s, const std::shared_ptr<Session>& sp) {
    std::lock_guard<std::mutex> lock(sessions_mu);
    sessions[s] = sp;
  }
  void Unregister(Session* s) {
    std::lock_guard<std::mutex> lock(sessions_mu);
    sessions.erase(s);
  }

  ServerOptions opt;
  const Router& router;
  Metrics& metrics;
  std::atomic<bool> draining{false};
  std::atomic<int> open{0};
  int bound_port = 0;
  Clock::time_point drain_deadline;
  // Declared before the io_context: sessions still queued in it are destroyed with it and
  // unregister themselves from here.
  std::mutex sessions_mu;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;

  std::vector<std::unique_ptr<net::io_context>> contexts;
  // Contexts whose threads have no connection yet must not return from run().
  std::vector<net::executor_work_guard<net::io_context::executor_type>> keep_running;
  std::atomic<std::size_t> next_context{0};
  tcp::acceptor acceptor;
  net::steady_timer drain_timer;
  net::steady_timer retry_timer;
  net::thread_pool workers;  // blocking handlers; joined in ~Impl after the I/O threads
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, HttpServer::Impl& server)
      : stream_(std::move(socket)), server_(server) {
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
    server_.open.fetch_add(1);
    server_.metrics.open_connections().Increment();
  }

  ~Session() {
    server_.Unregister(this);
    server_.metrics.open_connections().Decrement();
    server_.open.fetch_sub(1);
  }

  void Start() {
    server_.Register(this, shared_from_this());
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->WaitForRequest(); });
  }

  // Called when the server starts draining: an idle connection closes now; one with a
  // request under way finishes it and closes after the response.
  void OnShutdown() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (self->phase_ == Phase::kWaiting && self->buffer_.size() == 0) self->Close();
    });
  }

 private:
  enum class Phase { kWaiting, kReading, kHandling, kWriting, kLingering, kClosed };

  using Ms = std::chrono::milliseconds;

  void WaitForRequest() {
    if (phase_ == Phase::kClosed) return;
    if (server_.draining.load()) {
      Close();
      return;
    }
    phase_ = Phase::kWaiting;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_.opt.max_header_bytes));
    parser_->body_limit(static_cast<std::uint64_t>(server_.opt.max_body_bytes));
    if (buffer_.size() > 0) {  // a pipelined request is already here
      ReadRequest();
      return;
    }
    // A new connection must start its request within the read timeout; between keep-alive
    // requests the idle timeout applies.
    stream_.expires_after(
        Ms(served_ == 0 ? server_.opt.read_timeout_ms : server_.opt.idle_timeout_ms));
    stream_.async_read_some(buffer_.prepare(kFirstRead),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->OnFirstBytes(ec, n);
                            });
  }

  void OnFirstBytes(beast::error_code ec, std::size_t n) {
    if (ec) {  // timeout, peer closed, or cancelled by shutdown: nothing to answer
      Close();
      return;
    }
    buffer_.commit(n);
    ReadRequest();
  }

  void ReadRequest() {
    phase_ = Phase::kReading;
    stream_.expires_after(Ms(server_.opt.read_timeout_ms));
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) {
      OnReadError(ec);
      return;
    }
    const auto& req = parser_->get();
    auto expect = req[http::field::expect];
    if (!expect.empty() && beast::iequals(expect, "100-continue") && !parser_->is_done()) {
      net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                       [self = shared_from_this()](beast::error_code wec, std::size_t) {
                         if (wec) {
                           self->Close();
                           return;
                         }
                         self->ReadBody();
                       });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec) {
                         self->OnReadError(ec);
                         return;
                       }
                       self->OnRequest();
                     });
  }

  void OnReadError(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      RespondError(413, error_type::kPayloadTooLarge,
                   "request body exceeds the limit of " +
                       std::to_string(server_.opt.max_body_bytes) + " bytes");
    } else if (ec == http::error::header_limit) {
      RespondError(431, error_type::kHeaderTooLarge,
                   "request head exceeds the limit of " +
                       std::to_string(server_.opt.max_header_bytes) + " bytes");
    } else if (ec == beast::error::timeout) {
      // tcp_stream has already closed the socket, as nginx does on its header timeout: a
      // client too slow to send its request is not sent an answer either.
      Close();
    } else if (ec == http::error::end_of_stream || ec == net::error::eof ||
               ec == net::error::connection_reset || ec == net::error::operation_aborted ||
               ec == http::error::partial_message) {
      Close();
    } else {
      RespondError(400, error_type::kInvalidData, "malformed HTTP request: " + ec.message());
    }
  }

  void RespondError(int status, const char* type, const std::string& detail) {
    route_ = "invalid_request";
    method_ = parser_ && parser_->is_header_done() ? std::string(parser_->get().method_string())
                                                   : "UNKNOWN";
    target_.clear();
    handled_at_ = Clock::now();
    Write(ErrorResponse(status, type, detail), /*keep_alive=*/false);
  }

  void OnRequest() {
    phase_ = Phase::kHandling;
    handled_at_ = Clock::now();
    http::request<http::string_body> msg = parser_->release();
    parser_.reset();

    HttpRequest req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    auto q = req.target.find('?');
    req.path = req.target.substr(0, q);
    if (q != std::string::npos) req.query = req.target.substr(q + 1);
    for (const auto& field : msg) {
      req.headers.emplace_back(ToLower(field.name_string()), std::string(field.value()));
    }
    req.body = std::move(msg.body());
    req.remote = remote_;

    auto match = server_.router.Find(req.method, req.path);
    HttpResponse res;
    if (match.handler != nullptr && match.blocking) {
      // Off the I/O thread: the handler may wait seconds on an upstream. The connection has
      // no deadline meanwhile (the handler's own calls have theirs); the reply comes back
      // to this connection's executor.
      req.path_params = std::move(match.params);
      route_ = match.pattern;
      method_ = req.method;
      target_ = LoggedTarget(req);
      stream_.expires_never();
      const bool keep_alive = msg.keep_alive();
      server_.metrics.worker_queue().Increment();
      net::post(server_.workers, [self = shared_from_this(), handler = match.handler,
                                  req = std::move(req), keep_alive,
                                  queued = tracing::UnixNanoNow()]() mutable {
        auto& metrics = self->server_.metrics;
        metrics.worker_queue().Decrement();
        metrics.workers_busy().Increment();
        struct Done {
          Metrics& m;
          ~Done() { m.workers_busy().Decrement(); }
        } done{metrics};
        // The request's span starts when it was read, so time in the queue is in it.
        tracing::Span span("HTTP", tracing::SpanKind::kServer, CallerContext(req), queued);
        DescribeRequest(span, req, self->route_);
        self->trace_id_ = TraceIdOf(span);
        HttpResponse out;
        try {
          out = (*handler)(req);
        } catch (const std::exception& e) {
          spdlog::error("handler for {} {} threw: {}", req.method, self->route_, e.what());
          out = ErrorResponse(500, error_type::kUnexpected, "internal error");
        }
        if (out.stream) {
          self->Stream(out.stream, keep_alive);
          span.Set("http.response.status_code", self->status_);
          return;
        }
        EndRequestSpan(span, out);
        net::post(self->stream_.get_executor(), [self, out = std::move(out), keep_alive]() mutable {
          self->Write(std::move(out), keep_alive && !self->server_.draining.load());
        });
      });
      return;
    }
    if (match.handler != nullptr) {
      req.path_params = std::move(match.params);
      tracing::Span span("HTTP", tracing::SpanKind::kServer, CallerContext(req), 0);
      DescribeRequest(span, req, match.pattern);
      try {
        res = (*match.handler)(req);
      } catch (const std::exception& e) {
        spdlog::error("handler for {} {} threw: {}", req.method, match.pattern, e.what());
        res = ErrorResponse(500, error_type::kUnexpected, "internal error");
      }
      EndRequestSpan(span, res);
    } else if (!match.allowed.empty()) {
      std::string allow;
      for (const auto& m : match.allowed) allow += (allow.empty() ? "" : ", ") + m;
      res = ErrorResponse(405, error_type::kMethodNotAllowed,
                          "method " + req.method + " is not allowed on " + req.path);
      res.headers.emplace_back("Allow", allow);
    } else {
      res = ErrorResponse(404, error_type::kResourceNotFound, "no route for " + req.path);
    }
    route_ = match.pattern;
    method_ = std::move(req.method);
    target_ = LoggedTarget(req);
    Write(std::move(res), msg.keep_alive() && !server_.draining.load());
  }

  // On a worker thread, with nothing else under way on this connection: the producer's
  // chunks are written synchronously as they come (chunked transfer encoding), then the
  // connection goes back to its executor as after any response.
  void Stream(const std::function<void(ResponseStream&)>& producer, bool keep_alive) {
    struct Sink final : ResponseStream {
      Session& s;
      bool begun = false;
      beast::error_code ec;
      std::size_t bytes = 0;
      explicit Sink(Session& session) : s(session) {}
      bool Begin(int status, const std::string& content_type,
                 const std::vector<std::pair<std::string, std::string>>& headers) override {
        if (begun) return !ec;
        begun = true;
        http::response<http::empty_body> head{static_cast<http::status>(status), 11};
        head.set(http::field::server, "semcached");
        head.set(http::field::content_type, content_type);
        for (const auto& [name, value] : headers) head.set(name, value);
        if (!s.trace_id_.empty()) head.set(kTraceIdHeader, s.trace_id_);
        head.chunked(true);
        s.status_ = status;
        http::response_serializer<http::empty_body> sr{head};
        bytes += http::write_header(s.stream_, sr, ec);
        return !ec;
      }
      bool Write(std::string_view data) override {
        if (!begun || ec) return false;
        if (data.empty()) return true;
        bytes += net::write(s.stream_, http::make_chunk(net::buffer(data.data(), data.size())), ec);
        return !ec;
      }
    } sink{*this};
    try {
      producer(sink);
    } catch (const std::exception& e) {
      spdlog::error("streaming handler for {} threw: {}", route_, e.what());
    }
    if (!sink.begun) {
      sink.Begin(500, "application/json", {});
      sink.Write(
          R"({"error":{"message":"the response could not be produced","type":"internal_error"}})");
    }
    if (!sink.ec) sink.bytes += net::write(stream_, http::make_chunk_last(), sink.ec);
    net::post(stream_.get_executor(),
              [self = shared_from_this(), ec = sink.ec, bytes = sink.bytes, keep_alive] {
                self->phase_ = Phase::kWriting;
                self->OnWritten(ec, bytes, keep_alive && !self->server_.draining.load());
              });
  }

  void Write(HttpResponse res, bool keep_alive) {
    phase_ = Phase::kWriting;
    SerializeResponse(res, keep_alive, out_);
    status_ = res.status;
    stream_.expires_after(Ms(server_.opt.write_timeout_ms));
    net::async_write(stream_, net::buffer(out_),
                     [self = shared_from_this(), keep_alive](beast::error_code ec, std::size_t n) {
                       self->OnWritten(ec, n, keep_alive);
                     });
  }

  void OnWritten(beast::error_code ec, std::size_t bytes, bool keep_alive) {
    double seconds = std::chrono::duration<double>(Clock::now() - handled_at_).count();
    server_.metrics.ObserveRequest(route_, method_, status_, seconds);
    if (spdlog::should_log(spdlog::level::debug)) {
      spdlog::debug("http {} {} {} route={} bytes={} us={} remote={}", method_, target_, status_,
                    route_, bytes, static_cast<long long>(seconds * 1e6), remote_);
    }
    out_.clear();
    if (out_.capacity() > kKeptResponseBuffer) out_.shrink_to_fit();
    ++served_;
    if (ec) {
      Close();
      return;
    }
    if (!keep_alive) {
      Linger();
      return;
    }
    WaitForRequest();
  }

  // After a response with Connection: close, stop sending and read what the client still
  // sends (such as the rest of a refused body) for a moment, so that closing does not reset
  // the connection before the client has read the response.
  void Linger() {
    phase_ = Phase::kLingering;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) {
      Close();
      return;
    }
    buffer_.clear();
    stream_.expires_after(kLingerTime);
    DiscardInput();
  }

  void DiscardInput() {
    stream_.async_read_some(buffer_.prepare(kFirstRead),
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              if (ec) {
                                self->Close();
                                return;
                              }
                              self->buffer_.clear();
                              self->DiscardInput();
                            });
  }

  void Close() {
    if (phase_ == Phase::kClosed) return;
    phase_ = Phase::kClosed;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  HttpServer::Impl& server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string out_;  // the response being written
  Phase phase_ = Phase::kWaiting;
  std::string remote_;
  std::uint64_t served_ = 0;
  Clock::time_point handled_at_;
  std::string route_;
  std::string method_;
  std::string target_;
  int status_ = 0;
  std::string trace_id_;  // of the blocking request under way, for a streamed response's head
};

Status HttpServer::Impl::Listen() {
  beast::error_code ec;
  tcp::resolver resolver(*contexts[0]);
  auto results = resolver.resolve(opt.host, std::to_string(opt.port), ec);
  if (ec || results.empty()) {
    return InvalidArgument("cannot resolve server.host '" + opt.host + "': " + ec.message());
  }
  tcp::endpoint endpoint = results.begin()->endpoint();
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return Unavailable("cannot listen on " + opt.host + ":" + std::to_string(opt.port) + ": " +
                       ec.message());
  }
  bound_port = acceptor.local_endpoint().port();
  return Status::Ok();
}

void HttpServer::Impl::Accept() {
  acceptor.async_accept(NextContext(), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || draining.load()) return;
    if (ec) {
      // Out of file descriptors and similar: pause briefly instead of spinning.
      spdlog::warn("accept failed: {}", ec.message());
      retry_timer.expires_after(std::chrono::milliseconds(50));
      retry_timer.async_wait([this](beast::error_code) { Accept(); });
      return;
    }
    if (open.load() >= opt.max_connections) {
      metrics.rejected_connections().Increment();
      beast::error_code ignored;
      socket.close(ignored);
    } else {
      std::make_shared<Session>(std::move(socket), *this)->Start();
    }
    Accept();
  });
}

void HttpServer::Impl::Shutdown() {
  if (draining.exchange(true)) return;
  net::post(acceptor.get_executor(), [this] {
    beast::error_code ec;
    acceptor.close(ec);
    std::vector<std::shared_ptr<Session>> live;
    {
      std::lock_guard<std::mutex> lock(sessions_mu);
      for (auto& [ptr, weak] : sessions) {
        if (auto s = weak.lock()) live.push_back(std::move(s));
      }
    }
    spdlog::info("shutting down: {} connection(s) open, up to {} ms for requests in flight",
                 live.size(), opt.shutdown_timeout_ms);
    for (auto& s : live) s->OnShutdown();
    drain_deadline = Clock::now() + std::chrono::milliseconds(opt.shutdown_timeout_ms);
    net::post(*contexts[0], [this] { CheckDrained(); });
  });
}

void HttpServer::Impl::CheckDrained() {
  if (open.load() == 0) {
    spdlog::info("all connections closed; stopping");
    StopAll();
    return;
  }
  if (Clock::now() >= drain_deadline) {
    spdlog::warn("shutdown timeout reached with {} connection(s) open; stopping", open.load());
    StopAll();
    return;
  }
  drain_timer.expires_after(std::chrono::milliseconds(20));
  drain_timer.async_wait([this](beast::error_code) { CheckDrained(); });
}

HttpServer::HttpServer(ServerOptions options, const Router& router, Metrics& metrics)
    : impl_(std::make_unique<Impl>(std::move(options), router, metrics)) {}

HttpServer::~HttpServer() = default;

Status HttpServer::Listen() { return impl_->Listen(); }

int HttpServer::port() const { return impl_->bound_port; }

bool HttpServer::draining() const { return impl_->draining.load(); }

void HttpServer::Shutdown() { impl_->Shutdown(); }

void HttpServer::Run(bool handle_signals) {
  std::optional<net::signal_set> signals;
  if (handle_signals) {
    signals.emplace(*impl_->contexts[0], SIGINT, SIGTERM);
    signals->async_wait([this](beast::error_code ec, int sig) {
      if (ec) return;
      spdlog::info("received {}; draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      Shutdown();
    });
  }
  impl_->Accept();
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < impl_->contexts.size(); ++i) {
    threads.emplace_back([this, i] { impl_->contexts[i]->run(); });
  }
  impl_->contexts[0]->run();
  for (auto& t : threads) t.join();
}

}  // namespace semcached::server
