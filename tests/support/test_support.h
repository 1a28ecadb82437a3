// Helpers the black-box suites share: free ports, temporary directories, child processes,
// a real Redis 8 server, and a raw HTTP/1.1 client that can misbehave on purpose.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace semcached::testing {

// A loopback TCP port that was free a moment ago.
int FreePort();

// A fresh directory under $TMPDIR, removed with the object.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& text);

// A child process with its stdout and stderr captured to files.
class ChildProcess {
 public:
  ChildProcess(std::vector<std::string> argv, std::map<std::string, std::string> extra_env,
               const std::string& log_path);
  ~ChildProcess();  // kills (SIGKILL) if still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool Running();
  void Signal(int sig);
  // Waits for exit; the exit code, or -signal; nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  const std::string& log_path() const { return log_path_; }

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string log_path_;
};

// Runs a command to completion; exit code and combined output.
struct CommandResult {
  int exit_code = -1;
  std::string output;
};
CommandResult RunCommand(std::vector<std::string> argv,
                         std::map<std::string, std::string> extra_env = {},
                         std::chrono::milliseconds timeout = std::chrono::seconds(30));

// A real Redis 8 on a free loopback port, private data directory, no persistence.
class RedisServer {
 public:
  // extra_args go after the defaults (for example {"--requirepass", "secret"}).
  explicit RedisServer(std::vector<std::string> extra_args = {});
  ~RedisServer();
  int port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  void Stop();     // SIGTERM, then SIGKILL after 5 s
  void Kill();     // SIGKILL at once, as a crash would
  void Restart();  // stops if running, starts again on the same port, empty
  void Pause();    // SIGSTOP: the server hangs with its sockets open
  void Resume();   // SIGCONT
  bool running() const { return process_ != nullptr; }
  static std::string BinaryPath();

 private:
  bool TryStart();
  TempDir dir_;
  std::vector<std::string> extra_args_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

// A real Redis 8 cluster of `masters` masters (no replicas) on loopback ports, created with
// redis-cli --cluster create, ready (cluster_state:ok on every node) when constructed.
class RedisCluster {
 public:
  explicit RedisCluster(int masters = 3);
  std::vector<std::string> Seeds() const;  // "127.0.0.1:port" each
  RedisServer& node(int i) { return *nodes_[static_cast<std::size_t>(i)]; }
  int size() const { return static_cast<int>(nodes_.size()); }
  // Runs redis-cli against node i with the given arguments; its output.
  CommandResult Cli(int i, std::vector<std::string> args);
  // Moves `slot` with its keys from the node holding it to node `to`, as an operator would
  // (SETSLOT IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE on every master).
  void MoveSlot(int slot, int to);
  // The first half of MoveSlot: keys moved, slot marked MIGRATING/IMPORTING, ownership not yet
  // handed over, so the source answers ASK for the moved keys. FinishMove hands it over.
  void BeginMove(int slot, int to);
  void FinishMove(int slot, int to);
  int OwnerOf(int slot);

 private:
  std::string NodeId(int i);
  std::vector<std::unique_ptr<RedisServer>> nodes_;
};

// `semcached serve` on a free port with the given extra flags (--set key=value ...).
class SemcachedServer {
 public:
  // data_dir empty: a fresh directory of the server's own; given: kept across servers (restarts).
  explicit SemcachedServer(std::vector<std::string> extra_args = {},
                           std::map<std::string, std::string> extra_env = {},
                           std::string data_dir = "");
  ~SemcachedServer();
  int port() const { return port_; }
  ChildProcess& process() { return *process_; }
  std::string Log() const { return ReadFile(process_->log_path()); }
  static std::string BinaryPath();

 private:
  TempDir dir_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

// One TCP connection speaking HTTP/1.1 by hand.
class RawHttpConnection {
 public:
  explicit RawHttpConnection(int port);
  ~RawHttpConnection();
  bool connected() const { return fd_ >= 0; }
  bool Send(const std::string& bytes);
  // Reads one response; nullopt when the connection closed or the timeout passed first.
  std::optional<HttpReply> ReadResponse(
      std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Waits until the server closes the connection; true if it did within the timeout.
  bool WaitForClose(std::chrono::milliseconds timeout);

 private:
  bool Fill(std::chrono::steady_clock::time_point deadline);
  int fd_ = -1;
  std::string buffer_;
  bool eof_ = false;
};

// One request on a fresh connection.
std::optional<HttpReply> HttpRequestOnce(int port, const std::string& method,
                                         const std::string& path, const std::string& body = "",
                                         const std::map<std::string, std::string>& headers = {});

}  // namespace semcached::testing
