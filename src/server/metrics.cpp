#include "server/metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <prometheus/text_serializer.h>

namespace semcached::server {
namespace {

const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const prometheus::Histogram::BucketBoundaries b = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
      0.05,   0.1,     0.25,   0.5,   1.0,    2.5,   5.0,  10.0};
  return b;
}

// Reads /proc/self: the standard process_* metrics that client libraries in other languages
// export, since prometheus-cpp has no process collector.
std::vector<prometheus::MetricFamily> ProcessFamilies() {
  std::vector<prometheus::MetricFamily> out;
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));

  std::ifstream statm("/proc/self/statm");
  double vm_pages = 0, rss_pages = 0;
  if (statm >> vm_pages >> rss_pages) {
    out.push_back(SingleValueFamily("process_resident_memory_bytes",
                                    "Resident memory size in bytes.", prometheus::MetricType::Gauge,
                                    rss_pages * page));
    out.push_back(SingleValueFamily("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                                    prometheus::MetricType::Gauge, vm_pages * page));
  }

  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  // Fields after the command name, which is in parentheses and may contain spaces.
  auto close = stat.rfind(')');
  if (close != std::string::npos) {
    std::istringstream rest(stat.substr(close + 2));
    std::vector<std::string> f;
    std::string tok;
    while (rest >> tok) f.push_back(tok);
    // rest starts at field 3 (state): utime is field 14, stime 15, num_threads 20,
    // starttime 22 -> indexes 11, 12, 17, 19.
    if (f.size() > 19) {
      double cpu = (std::stod(f[11]) + std::stod(f[12])) / ticks;
      out.push_back(SingleValueFamily("process_cpu_seconds_total",
                                      "Total user and system CPU time spent in seconds.",
                                      prometheus::MetricType::Counter, cpu));
      out.push_back(SingleValueFamily("process_threads", "Number of OS threads in the process.",
                                      prometheus::MetricType::Gauge, std::stod(f[17])));
      std::ifstream uptime_file("/proc/uptime");
      double uptime = 0;
      if (uptime_file >> uptime) {
        double boot = static_cast<double>(time(nullptr)) - uptime;
        out.push_back(SingleValueFamily(
            "process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
            prometheus::MetricType::Gauge, boot + std::stod(f[19]) / ticks));
      }
    }
  }

  if (DIR* d = opendir("/proc/self/fd")) {
    double fds = 0;
    while (readdir(d) != nullptr) ++fds;
    closedir(d);
    out.push_back(SingleValueFamily("process_open_fds", "Number of open file descriptors.",
                                    prometheus::MetricType::Gauge,
                                    fds - 3));  // ., .. and the DIR itself
  }
  return out;
}

}  // namespace

prometheus::MetricFamily SingleValueFamily(const std::string& name, const std::string& help,
                                           prometheus::MetricType type, double value) {
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  prometheus::ClientMetric m;
  if (type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(m);
  return f;
}

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  requests_ = &prometheus::BuildCounter()
                   .Name("semcached_http_requests_total")
                   .Help("HTTP requests answered, by route pattern, method and status.")
                   .Register(*registry_);
  latency_ = &prometheus::BuildHistogram()
                  .Name("semcached_http_request_duration_seconds")
                  .Help("Time from a request's last byte read to its response written.")
                  .Register(*registry_);
  build_info_ = &prometheus::BuildGauge()
                     .Name("semcached_build_info")
                     .Help("Build of this process; the value is always 1.")
                     .Register(*registry_);
  simd_ = &prometheus::BuildGauge()
               .Name("semcached_simd_level")
               .Help("Instruction set the vector kernels use; the value is always 1.")
               .Register(*registry_);
  open_connections_ = &prometheus::BuildGauge()
                           .Name("semcached_http_open_connections")
                           .Help("HTTP connections open now.")
                           .Register(*registry_)
                           .Add({});
  within_objective_ = &prometheus::BuildCounter()
                           .Name("semcached_http_requests_within_objective_total")
                           .Help(
                               "HTTP requests answered within the latency objective "
                               "(semcached_http_latency_objective_seconds), by route pattern.")
                           .Register(*registry_);
  objective_ = &prometheus::BuildGauge()
                    .Name("semcached_http_latency_objective_seconds")
                    .Help(
                        "The latency objective requests are counted against "
                        "(server.latency_objective_ms).")
                    .Register(*registry_)
                    .Add({});
  objective_->Set(objective_seconds_);
  auto gauge = [this](const char* name, const char* help) {
    return &prometheus::BuildGauge().Name(name).Help(help).Register(*registry_).Add({});
  };
  worker_queue_ = gauge("semcached_http_worker_queue",
                        "Blocking requests (upstream calls, Redis caches) waiting for a worker.");
  workers_busy_ = gauge("semcached_http_workers_busy", "Workers running a blocking request.");
  worker_threads_ = gauge("semcached_http_worker_threads", "Threads in the worker pool.");
  rejected_connections_ = &prometheus::BuildCounter()
                               .Name("semcached_http_rejected_connections_total")
                               .Help("Connections closed at accept: server.max_connections.")
                               .Register(*registry_)
                               .Add({});
}

void Metrics::SetBuildInfo(const std::string& version, const std::string& git,
                           const std::string& simd) {
  build_info_->Add({{"version", version}, {"git", git}}).Set(1);
  simd_->Add({{"level", simd}}).Set(1);
}

void Metrics::SetLatencyObjective(double seconds) {
  objective_seconds_ = seconds;
  objective_->Set(seconds);
}

void Metrics::ObserveRequest(const std::string& route, const std::string& method, int status,
                             double seconds) {
  std::string key = route;
  key += '\n';
  key += method;
  key += '\n';
  key += std::to_string(status);
  PerRoute per;
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(key);
    if (it == cache_.end()) {
      std::string code = std::to_string(status);
      per.count = &requests_->Add({{"route", route}, {"method", method}, {"status", code}});
      per.latency = &latency_->Add({{"route", route}, {"method", method}, {"status", code}},
                                   LatencyBuckets());
      per.within_objective = &within_objective_->Add({{"route", route}});
      cache_.emplace(std::move(key), per);
    } else {
      per = it->second;
    }
  }
  per.count->Increment();
  per.latency->Observe(seconds);
  if (seconds <= objective_seconds_) per.within_objective->Increment();
}

std::vector<prometheus::MetricFamily> Metrics::Collect() const {
  auto families = registry_->Collect();
  auto process = ProcessFamilies();
  families.insert(families.end(), process.begin(), process.end());
  for (const auto& collect : collectors_) {
    auto more = collect();
    families.insert(families.end(), more.begin(), more.end());
  }
  return families;
}

std::string Metrics::Render() const { return prometheus::TextSerializer().Serialize(Collect()); }

}  // namespace semcached::server
