// `semcached import CACHE FILE.jsonl`: loads entries into a running semcached over its
// LangCache API; `semcached export CACHE` writes a cache's entries in the same format.
//
// Every line is checked first (JSON object; prompt and response strings; attributes an
// object of strings; ttlMillis a positive integer); any bad line is reported by number and
// nothing is imported. Then entries are stored one by one with a progress bar on stderr; if
// the server refuses or fails part-way, the entries already stored are deleted again, so a
// file is imported whole or not at all.
#pragma once

#include <string>

namespace semcached::app {

struct ImportOptions {
  std::string url = "http://127.0.0.1:8080";
  std::string cache_id;
  std::string api_key;  // sent as a Bearer token when set
  std::string file;
  int timeout_ms = 10000;
  bool progress = true;
};

// The process exit code: 0 imported, 2 bad input (nothing imported), 1 server failure
// (rolled back).
int RunImport(const ImportOptions& options);

// Export: GET /v1/caches/{cache}/export (the cache's keys), one entry a line with its id and
// remaining TTL (and its vector with `vectors`), written durably to `file` ("-": stdout).
// The exit code: 0 written, 1 the server refused or failed (nothing written).
struct ExportOptions {
  std::string url = "http://127.0.0.1:8080";
  std::string cache_id;
  std::string api_key;
  std::string file = "-";
  bool vectors = false;
  int timeout_ms = 600000;  // a whole cache comes in one response
};
int RunExport(const ExportOptions& options);

}  // namespace semcached::app
