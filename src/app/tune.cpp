#include "app/tune.h"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/cache_admin.h"
#include "app/progress.h"
#include "cache/guards.h"
#include "cache/normalize.h"
#include "cache/tuning.h"
#include "common/csv_record.h"
#include "common/http_client.h"

namespace semcached::app {
namespace {

struct LabelledPair {
  std::string first, second;  // the stored question and the one asked
  bool label_one = false;
};

bool ParseLabel(const std::string& text, bool* one) {
  if (text == "1" || text == "true" || text == "1.0") return *one = true, true;
  if (text == "0" || text == "false" || text == "0.0") return *one = false, true;
  return false;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The pairs of a file, and what its label 1 means when the file says ("same"/"different").
Result<std::vector<LabelledPair>> ReadPairs(const std::string& path, std::string* label_means) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read " + path);
  std::vector<LabelledPair> pairs;
  if (EndsWith(path, ".jsonl") || EndsWith(path, ".json")) {
    // One object a line: the two questions under question1/question2, a/b or stored/asked, the
    // label under is_duplicate, same, duplicate or label (0/1 or false/true).
    std::string line;
    for (std::size_t n = 1; std::getline(in, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      auto j = nlohmann::json::parse(line, nullptr, false);
      auto where = path + " line " + std::to_string(n) + ": ";
      if (!j.is_object()) return InvalidArgument(where + "not a JSON object");
      LabelledPair p;
      bool found = false;
      for (auto [x, y] : {std::pair{"question1", "question2"}, {"a", "b"}, {"stored", "asked"}}) {
        if (j.contains(x) && j.contains(y) && j[x].is_string() && j[y].is_string()) {
          p.first = j[x];
          p.second = j[y];
          found = true;
          break;
        }
      }
      if (!found)
        return InvalidArgument(where +
                               "needs two strings: question1/question2, a/b or stored/asked");
      found = false;
      for (const char* key : {"is_duplicate", "same", "duplicate", "label"}) {
        if (!j.contains(key)) continue;
        const auto& v = j[key];
        if (v.is_boolean()) p.label_one = v.get<bool>(), found = true;
        if (v.is_number_integer() && (v == 0 || v == 1)) p.label_one = v == 1, found = true;
        if (found) break;
      }
      if (!found)
        return InvalidArgument(where +
                               "needs a label 0/1 under is_duplicate, same, duplicate or label");
      pairs.push_back(std::move(p));
    }
    return pairs;
  }
  const char sep = EndsWith(path, ".tsv") ? '\t' : ',';
  std::vector<std::string> f;
  if (!ReadCsvRecord(in, sep, &f) || f.size() < 3)
    return InvalidArgument(path + ": needs a header and three columns (two questions, a label)");
  bool header_label_one = false;
  std::size_t label_at = 2;
  if (ParseLabel(f[2], &header_label_one)) {
    return InvalidArgument(path +
                           ": the first line must be a header (for example "
                           "question1,question2,is_duplicate)");
  }
  for (std::size_t i = 0; i < f.size(); ++i)
    if (f[i] == "is_duplicate" || f[i] == "label" || f[i] == "same") label_at = i;
  if (label_means->empty()) {
    const bool cannot_style = f[0] == "premise" && f[1] == "hypothesis" && f[label_at] == "label";
    *label_means = cannot_style ? "different" : "same";
  }
  for (std::size_t n = 2; ReadCsvRecord(in, sep, &f); ++n) {
    if (f.size() == 1 && f[0].empty()) continue;
    LabelledPair p;
    if (f.size() <= label_at || !ParseLabel(f[label_at], &p.label_one))
      return InvalidArgument(path + " record " + std::to_string(n) +
                             ": needs a label 0 or 1 in column " + std::to_string(label_at + 1));
    p.first = f[0];
    p.second = f[1];
    pairs.push_back(std::move(p));
  }
  return pairs;
}

int Fail(int code, const std::string& why) {
  std::cerr << "semcached tune: " << why << "\n";
  return code;
}

int TuneFromServer(const TuneOptions& options) {
  HttpRequest request;
  request.method = "GET";
  request.url = options.server_url + "/v1/caches/" + options.cache_id +
                "/tuning?targetFalseHitRate=" + std::to_string(options.target_false_hit_rate);
  if (!options.api_key.empty())
    request.headers.push_back("Authorization: Bearer " + options.api_key);
  request.timeout_ms = 30'000;
  auto reply = HttpClient::Shared().Perform(request);
  if (!reply.ok())
    return Fail(1, "cannot reach " + options.server_url + ": " + reply.status().message());
  if (reply->status != 200)
    return Fail(reply->status == 404 ? 2 : 1,
                "the server answered " + std::to_string(reply->status) + ": " + reply->body);
  auto report = cache::TuningReportFromJson(reply->body);
  if (!report) return Fail(1, "the server's answer is not a tuning report: " + reply->body);
  if (options.json) {
    std::cout << reply->body << "\n";
  } else {
    std::cout << "cache '" << options.cache_id << "' at " << options.server_url
              << ": labelled lookups so far\n"
              << cache::TuningReportText(*report);
  }
  return 0;
}

}  // namespace

int RunTune(const Config& config, const TuneOptions& options) {
  if (options.target_false_hit_rate < 0 || options.target_false_hit_rate > 1)
    return Fail(2, "--target-false-hits must be between 0 and 1");
  if (options.pairs_file.empty()) return TuneFromServer(options);
  if (!options.label_means.empty() && options.label_means != "same" &&
      options.label_means != "different")
    return Fail(2, "--label-means must be 'same' or 'different'");
  auto settings = FindCacheConfig(config, options.cache_id);
  if (!settings.ok()) return Fail(2, settings.status().message());
  std::string label_means = options.label_means;
  auto pairs = ReadPairs(options.pairs_file, &label_means);
  if (!pairs.ok()) return Fail(2, pairs.status().message());
  if (pairs->empty()) return Fail(2, options.pairs_file + " has no pairs");
  if (label_means.empty()) label_means = "same";  // JSON lines name their label
  auto embedder = MakeEmbedder(config, *settings);
  if (!embedder.ok()) return Fail(1, embedder.status().message());
  const cache::CacheOptions cache_options = ToCacheOptions(*settings);

  struct Prepared {
    std::string first, second;
    const LabelledPair* pair;
  };
  std::vector<Prepared> prepared;
  std::size_t unusable = 0;
  for (const auto& p : *pairs) {
    auto a = cache::NormalizePrompt(p.first, cache_options.normalize);
    auto b = cache::NormalizePrompt(p.second, cache_options.normalize);
    if (!a.ok() || !b.ok() || a->empty() || b->empty()) {
      ++unusable;  // invalid UTF-8, or nothing left after normalizing: the API refuses it too
      continue;
    }
    prepared.push_back({std::move(*a), std::move(*b), &p});
  }
  // Embedders that learn term weights from what the cache holds see every question first.
  for (const auto& p : prepared) {
    (*embedder)->Observe(p.first);
    (*embedder)->Observe(p.second);
  }
  auto progress = ProgressBar(options.progress, "pairs");
  std::vector<cache::LabelledLookup> lookups;
  lookups.reserve(prepared.size());
  for (std::size_t i = 0; i < prepared.size(); ++i) {
    const auto& p = prepared[i];
    auto similarity = embed::CosineOf(**embedder, p.first, p.second);
    if (!similarity.ok()) return Fail(1, "embedding failed: " + similarity.status().message());
    cache::LabelledLookup l;
    l.similarity = *similarity;
    l.refused_by_guards = cache::CheckGuards(cache::GuardText(p.second, p.pair->second),
                                             cache::GuardText(p.first, p.pair->first),
                                             cache_options.guards) != cache::GuardVerdict::kPass;
    l.same_question = p.pair->label_one == (label_means == "same");
    lookups.push_back(l);
    if (progress) progress(i + 1, prepared.size());
  }
  const cache::TuningReport report = cache::WhatIf(lookups, options.target_false_hit_rate);
  if (options.json) {
    std::cout << cache::TuningReportJson(report) << "\n";
  } else {
    std::cout << "cache '" << options.cache_id << "', embedder " << (*embedder)->name() << ", "
              << options.pairs_file << " (label 1 = " << label_means << " question)";
    if (unusable) std::cout << "; " << unusable << " pairs left out (empty or invalid text)";
    std::cout << "\n" << cache::TuningReportText(report);
  }
  return 0;
}

}  // namespace semcached::app
