#include "test_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <hiredis/hiredis.h>

#ifndef SEMCACHED_BINARY
#error "SEMCACHED_BINARY must name the semcached executable"
#endif
#ifndef SEMCACHED_REDIS8_SERVER
#error "SEMCACHED_REDIS8_SERVER must name the redis-server binary"
#endif

namespace semcached::testing {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    throw std::runtime_error("FreePort: bind failed");
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/semcached-test-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

namespace {

pid_t Spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
            const std::string& log_path) {
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());  // names without a slash are looked up in PATH
    _exit(127);
  }
  return pid;
}

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1000;
}

}  // namespace

ChildProcess::ChildProcess(std::vector<std::string> argv,
                           std::map<std::string, std::string> extra_env,
                           const std::string& log_path)
    : log_path_(log_path) {
  pid_ = Spawn(argv, extra_env, log_path);
}

ChildProcess::~ChildProcess() {
  if (!status_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    int st = 0;
    waitpid(pid_, &st, 0);
  }
}

bool ChildProcess::Running() {
  if (status_) return false;
  int st = 0;
  pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = DecodeStatus(st);
    return false;
  }
  return true;
}

void ChildProcess::Signal(int sig) {
  if (!status_) kill(pid_, sig);
}

std::optional<int> ChildProcess::Wait(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Running()) {
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
  return status_;
}

CommandResult RunCommand(std::vector<std::string> argv,
                         std::map<std::string, std::string> extra_env,
                         std::chrono::milliseconds timeout) {
  TempDir dir;
  ChildProcess p(std::move(argv), std::move(extra_env), dir.File("out.log"));
  CommandResult r;
  auto code = p.Wait(timeout);
  r.exit_code = code ? *code : -9999;
  r.output = ReadFile(dir.File("out.log"));
  return r;
}

std::string RedisServer::BinaryPath() {
  const char* env = std::getenv("REDIS8_SERVER_FOR_TESTS");
  return env && *env ? env : SEMCACHED_REDIS8_SERVER;
}

RedisServer::RedisServer(std::vector<std::string> extra_args) : extra_args_(std::move(extra_args)) {
  if (access(BinaryPath().c_str(), X_OK) != 0) {
    throw std::runtime_error("no Redis 8 at " + BinaryPath() +
                             ": run scripts/redis8.sh (make deps)");
  }
  // A cluster node also listens on port + 10000 (its bus), so its port must stay below 55536.
  const bool cluster =
      std::find(extra_args_.begin(), extra_args_.end(), "--cluster-enabled") != extra_args_.end();
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = FreePort();
    while (cluster && port_ > 55535) port_ = FreePort();
    if (TryStart()) return;
  }
  throw std::runtime_error("Redis 8 did not start; see " + dir_.File("redis.log") + ": " +
                           ReadFile(dir_.File("redis.log")));
}

bool RedisServer::TryStart() {
  std::vector<std::string> argv{BinaryPath(), "--port",           std::to_string(port_),
                                "--bind",     "127.0.0.1",        "--save",
                                "",           "--appendonly",     "no",
                                "--dir",      dir_.path(),        "--daemonize",
                                "no",         "--protected-mode", "no"};
  argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
  process_ = std::make_unique<ChildProcess>(argv, std::map<std::string, std::string>{},
                                            dir_.File("redis.log"));
  auto deadline = Clock::now() + 10s;
  while (Clock::now() < deadline && process_->Running()) {
    timeval tv{0, 200'000};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
    bool up = false;
    if (c && !c->err) {
      // Any reply will do: with requirepass, PING answers NOAUTH, which is still a live server.
      auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
      up = r != nullptr;
      if (r) freeReplyObject(r);
    }
    if (c) redisFree(c);
    if (up) return true;
    std::this_thread::sleep_for(20ms);
  }
  process_.reset();
  return false;
}

void RedisServer::Restart() {
  Stop();
  auto deadline = Clock::now() + 10s;
  while (Clock::now() < deadline) {
    if (TryStart()) return;
    std::this_thread::sleep_for(100ms);  // the port may linger a moment after a kill
  }
  throw std::runtime_error("Redis 8 did not restart on port " + std::to_string(port_) +
                           "; its log: " + ReadFile(dir_.File("redis.log")));
}

RedisServer::~RedisServer() {
  Resume();
  Stop();
}

void RedisServer::Stop() {
  if (!process_) return;
  process_->Signal(SIGTERM);
  if (!process_->Wait(5s)) process_->Signal(SIGKILL);
  process_.reset();
}

void RedisServer::Kill() {
  if (!process_) return;
  process_->Signal(SIGKILL);
  process_->Wait(5s);
  process_.reset();
}

void RedisServer::Pause() {
  if (process_) process_->Signal(SIGSTOP);
}

void RedisServer::Resume() {
  if (process_) process_->Signal(SIGCONT);
}

RedisCluster::RedisCluster(int masters) {
  for (int i = 0; i < masters; ++i) {
    nodes_.push_back(std::make_unique<RedisServer>(std::vector<std::string>{
        "--cluster-enabled", "yes", "--cluster-config-file", "nodes-" + std::to_string(i) + ".conf",
        "--cluster-node-timeout", "2000"}));
  }
  std::vector<std::string> args{"--cluster", "create"};
  for (const auto& seed : Seeds()) args.push_back(seed);
  args.insert(args.end(), {"--cluster-replicas", "0", "--cluster-yes"});
  auto created = Cli(0, args);
  if (created.exit_code != 0)
    throw std::runtime_error("redis-cli --cluster create failed: " + created.output);
  auto deadline = Clock::now() + 20s;
  while (Clock::now() < deadline) {
    bool ok = true;
    for (int i = 0; i < masters && ok; ++i) {
      ok = Cli(i, {"CLUSTER", "INFO"}).output.find("cluster_state:ok") != std::string::npos;
    }
    if (ok) return;
    std::this_thread::sleep_for(100ms);
  }
  throw std::runtime_error("the Redis cluster did not reach cluster_state:ok");
}

std::vector<std::string> RedisCluster::Seeds() const {
  std::vector<std::string> out;
  for (const auto& n : nodes_) out.push_back("127.0.0.1:" + std::to_string(n->port()));
  return out;
}

CommandResult RedisCluster::Cli(int i, std::vector<std::string> args) {
  std::string server = RedisServer::BinaryPath();
  std::string cli = server.substr(0, server.rfind('/') + 1) + "redis-cli";
  std::vector<std::string> argv{cli, "-p", std::to_string(node(i).port())};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv);
}

std::string RedisCluster::NodeId(int i) {
  auto r = Cli(i, {"CLUSTER", "MYID"});
  std::string id = r.output;
  while (!id.empty() && (id.back() == '\n' || id.back() == '\r')) id.pop_back();
  return id;
}

int RedisCluster::OwnerOf(int slot) {
  auto slots = Cli(0, {"CLUSTER", "SLOTS"}).output;
  // redis-cli prints one value per line: start, end, host, port, id, ... per range.
  std::vector<std::string> lines;
  std::size_t pos = 0;
  while (pos < slots.size()) {
    auto nl = slots.find('\n', pos);
    if (nl == std::string::npos) nl = slots.size();
    lines.push_back(slots.substr(pos, nl - pos));
    pos = nl + 1;
  }
  for (std::size_t i = 0; i + 3 < lines.size(); ++i) {
    char* end = nullptr;
    long start = std::strtol(lines[i].c_str(), &end, 10);
    if (end == lines[i].c_str() || *end != '\0') continue;
    long stop = std::strtol(lines[i + 1].c_str(), &end, 10);
    if (end == lines[i + 1].c_str() || *end != '\0' || lines[i + 2] != "127.0.0.1") continue;
    int port = std::atoi(lines[i + 3].c_str());
    if (slot >= start && slot <= stop) {
      for (int n = 0; n < size(); ++n) {
        if (node(n).port() == port) return n;
      }
    }
  }
  return -1;
}

void RedisCluster::MoveSlot(int slot, int to) {
  const int from = OwnerOf(slot);
  if (from < 0) throw std::runtime_error("no owner for slot " + std::to_string(slot));
  if (from == to) return;
  BeginMove(slot, to);
  FinishMove(slot, to);
}

void RedisCluster::FinishMove(int slot, int to) {
  const std::string to_id = NodeId(to);
  for (int i = 0; i < size(); ++i)
    Cli(i, {"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", to_id});
}

void RedisCluster::BeginMove(int slot, int to) {
  const int from = OwnerOf(slot);
  if (from < 0 || from == to)
    throw std::runtime_error("slot " + std::to_string(slot) + ": nothing to move");
  const std::string s = std::to_string(slot);
  const std::string from_id = NodeId(from), to_id = NodeId(to);
  Cli(to, {"CLUSTER", "SETSLOT", s, "IMPORTING", from_id});
  Cli(from, {"CLUSTER", "SETSLOT", s, "MIGRATING", to_id});
  for (;;) {
    auto keys = Cli(from, {"CLUSTER", "GETKEYSINSLOT", s, "100"}).output;
    std::vector<std::string> list;
    std::size_t pos = 0;
    while (pos < keys.size()) {
      auto nl = keys.find('\n', pos);
      if (nl == std::string::npos) nl = keys.size();
      if (nl > pos) list.push_back(keys.substr(pos, nl - pos));
      pos = nl + 1;
    }
    if (list.empty()) break;
    std::vector<std::string> migrate{
        "MIGRATE", "127.0.0.1", std::to_string(node(to).port()), "", "0", "5000", "KEYS"};
    migrate.insert(migrate.end(), list.begin(), list.end());
    auto r = Cli(from, migrate);
    if (r.output.find("OK") == std::string::npos)
      throw std::runtime_error("MIGRATE failed: " + r.output);
  }
}

std::string SemcachedServer::BinaryPath() { return SEMCACHED_BINARY; }

SemcachedServer::SemcachedServer(std::vector<std::string> extra_args,
                                 std::map<std::string, std::string> extra_env,
                                 std::string data_dir) {
  if (data_dir.empty()) data_dir = dir_.File("data");
  std::string port_file = dir_.File("port");
  std::vector<std::string> argv = {
      BinaryPath(), "serve",           "--port", "0",
      "--data-dir", data_dir,          "--set",  "server.port_file=" + port_file,
      "--set",      "server.threads=2"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  process_ = std::make_unique<ChildProcess>(argv, extra_env, dir_.File("semcached.log"));
  auto deadline = Clock::now() + 15s;
  while (Clock::now() < deadline) {
    std::string text = ReadFile(port_file);
    if (!text.empty()) {
      port_ = std::stoi(text);
      return;
    }
    if (!process_->Running()) break;
    std::this_thread::sleep_for(10ms);
  }
  throw std::runtime_error("semcached did not start: " + ReadFile(dir_.File("semcached.log")));
}

SemcachedServer::~SemcachedServer() {
  if (process_->Running()) {
    process_->Signal(SIGTERM);
    if (!process_->Wait(20s)) process_->Signal(SIGKILL);
  }
}

RawHttpConnection::RawHttpConnection(int port) {
  fd_ = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd_);
    fd_ = -1;
  }
}

RawHttpConnection::~RawHttpConnection() {
  if (fd_ >= 0) close(fd_);
}

bool RawHttpConnection::Send(const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

bool RawHttpConnection::Fill(Clock::time_point deadline) {
  if (eof_) return false;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  if (left.count() <= 0) return false;
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
  char buf[16384];
  ssize_t n = recv(fd_, buf, sizeof(buf), 0);
  if (n <= 0) {
    eof_ = true;
    return false;
  }
  buffer_.append(buf, static_cast<size_t>(n));
  return true;
}

std::optional<HttpReply> RawHttpConnection::ReadResponse(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  size_t head_end;
  while ((head_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (!Fill(deadline)) return std::nullopt;
  }
  HttpReply reply;
  std::istringstream head(buffer_.substr(0, head_end));
  std::string line;
  std::getline(head, line);
  if (line.size() < 12) return std::nullopt;
  reply.status = std::stoi(line.substr(9, 3));
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    reply.headers[name] = value;
  }
  size_t length = 0;
  if (auto it = reply.headers.find("content-length"); it != reply.headers.end()) {
    length = std::stoul(it->second);
  }
  while (buffer_.size() < head_end + 4 + length) {
    if (!Fill(deadline)) return std::nullopt;
  }
  reply.body = buffer_.substr(head_end + 4, length);
  buffer_.erase(0, head_end + 4 + length);
  return reply;
}

bool RawHttpConnection::WaitForClose(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (!eof_) {
    if (!Fill(deadline) && !eof_) return false;
  }
  return true;
}

std::optional<HttpReply> HttpRequestOnce(int port, const std::string& method,
                                         const std::string& path, const std::string& body,
                                         const std::map<std::string, std::string>& headers) {
  RawHttpConnection c(port);
  if (!c.connected()) return std::nullopt;
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  if (!body.empty() || method == "POST" || method == "PUT") {
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n" + body;
  if (!c.Send(req)) return std::nullopt;
  return c.ReadResponse();
}

}  // namespace semcached::testing
