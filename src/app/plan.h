// `semcached plan`: how much memory, CPU and time a deployment needs, before it exists.
//
// From per-entry and per-request figures the benchmarks measured (bench/capacity.py gathers
// them into src/app/capacity_figures.json, built into the binary): memory per instance
// (embedded) or per Redis shard, CPU cores for a target request rate, and the time a snapshot
// and a restore take. Every figure it uses and every assumption it makes is printed with the
// answer, so the answer can be checked and redone by hand.
// Must not: contact a server or read anything but its own figures (and --figures FILE).
#pragma once

#include <cstddef>
#include <string>

#include "common/status.h"

namespace semcached::app {

struct PlanOptions {
  std::size_t entries = 0;
  std::size_t dim = 0;
  std::size_t prompt_bytes = 200;
  std::size_t response_bytes = 1000;
  double qps = 0;                  // 0: no CPU estimate
  double exact_share = 0.3;        // of requests, answered by the exact tier (the cheaper one)
  std::string store = "embedded";  // embedded | redis
  std::size_t shards = 1;          // Redis: the entries spread over this many shards
  std::string figures_file;        // empty: the built-in figures
  bool json = false;
};

// Prints the plan; a usage error (no --entries, a bad store) is kInvalidArgument.
Status RunPlan(const PlanOptions& options);

// The built-in figures (JSON text).
const char* BuiltinCapacityFigures();

}  // namespace semcached::app
