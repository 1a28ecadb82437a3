// Hit quality of the built-in embedder on labelled question pairs (../shared/data).
//
//   hit_quality --qqp ../shared/data/semantic-pairs/meancache/val.csv
//               --cannot ../shared/data/semantic-pairs/cannot/sem_anto_neg.tsv
//
// For the QQP-derived pairs: the embedder learns term weights from every question, each
// pair is scored by cosine, and we report average precision, the hit rate on duplicates
// and the false-hit rate on non-duplicates per threshold, and the threshold where the
// false-hit rate is 5%. For the CANNOT pairs (negations and antonyms, label 1 = not
// equivalent): how many non-equivalent pairs would be served at each threshold with and
// without the guards, and what the guards cost on true paraphrases.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cache/guards.h"
#include "cache/normalize.h"
#include "common/csv_record.h"
#include "embed/builtin_embedder.h"
#include "embed/static_embedder.h"

namespace {

struct Pair {
  std::string a, b;
  bool positive;
  float sim = 0;
  std::string raw_a, raw_b;  // as written: the entity guard reads names from these
};

bool Guarded(const Pair& p, const semcached::cache::GuardOptions& g) {
  using semcached::cache::GuardText;
  return semcached::cache::CheckGuards(GuardText(p.b, p.raw_b), GuardText(p.a, p.raw_a), g) !=
         semcached::cache::GuardVerdict::kPass;
}

float Cos(const std::vector<float>& x, const std::vector<float>& y) {
  float s = 0;
  for (std::size_t i = 0; i < x.size(); ++i) s += x[i] * y[i];
  return s;
}

std::string Norm(const std::string& s) {
  auto r = semcached::cache::NormalizePrompt(s);
  return r.ok() ? *r : std::string();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"hit quality of the built-in embedder"};
  std::string qqp = "../shared/data/semantic-pairs/meancache/val.csv";
  std::string cannot = "../shared/data/semantic-pairs/cannot/sem_anto_neg.tsv";
  std::string json_out = "bench/results/hit_quality.json";
  app.add_option("--qqp", qqp);
  app.add_option("--cannot", cannot);
  app.add_option("--json", json_out);
  semcached::embed::BuiltinEmbedderOptions eo;
  app.add_option("--dim", eo.dim);
  app.add_option("--word-weight", eo.word_weight);
  app.add_option("--bigram-weight", eo.bigram_weight);
  app.add_option("--char-weight", eo.char_weight);
  app.add_option("--min-n", eo.min_char_ngram);
  app.add_option("--max-n", eo.max_char_ngram);
  std::string rewordings = "tests/data/everyday_rewordings.tsv";
  std::string traps = "tests/data/traps.tsv";
  app.add_option("--rewordings", rewordings, "TSV of stored, asked, kind: should hit");
  app.add_option("--traps", traps, "TSV of stored, asked, kind: must not hit");
  float dump_at = 0;
  app.add_option("--dump-at", dump_at,
                 "list the traps served and the rewordings refused at this threshold");
  bool qqp_guards = false;
  app.add_flag("--qqp-guards", qqp_guards, "apply every guard to the QQP pairs too");
  float dump_qqp_at = 0;
  app.add_option("--dump-qqp-at", dump_qqp_at,
                 "list the QQP non-duplicates served at this threshold (after the guards)");
  std::string embedder = "ngram";
  app.add_option("--embedder", embedder, "ngram, or model2vec (the built-in static model)");
  CLI11_PARSE(app, argc, argv);
  auto make = [&]() -> std::unique_ptr<semcached::embed::Embedder> {
    if (embedder == "model2vec")
      return std::move(
          *semcached::embed::StaticEmbedder::Load(semcached::embed::DefaultStaticModel()));
    return std::make_unique<semcached::embed::BuiltinEmbedder>(eo);
  };

  std::ifstream in(qqp);
  if (!in) {
    std::fprintf(stderr, "hit_quality: cannot read %s\n", qqp.c_str());
    return 2;
  }
  std::vector<std::string> f;
  semcached::ReadCsvRecord(in, ',', &f);  // header
  std::vector<Pair> pairs;
  while (semcached::ReadCsvRecord(in, ',', &f)) {
    if (f.size() < 3) continue;
    pairs.push_back({Norm(f[0]), Norm(f[1]), f[2] == "1", 0, f[0], f[1]});
  }
  auto e = make();
  for (const auto& p : pairs) {
    e->Observe(p.a);
    e->Observe(p.b);
  }
  for (auto& p : pairs) p.sim = Cos(*e->Embed(p.a), *e->Embed(p.b));
  const semcached::cache::GuardOptions all_guards;
  if (qqp_guards) {  // a pair the guards refuse is never served, whatever its similarity
    for (auto& p : pairs)
      if (Guarded(p, all_guards)) p.sim = -1;
  }

  // Average precision: positives ranked by similarity.
  std::vector<Pair> sorted = pairs;
  std::sort(sorted.begin(), sorted.end(),
            [](const Pair& x, const Pair& y) { return x.sim > y.sim; });
  std::size_t pos_total = 0, neg_total = 0;
  for (const auto& p : pairs) (p.positive ? pos_total : neg_total)++;
  double ap = 0;
  std::size_t tp = 0, fp = 0;
  double at5_threshold = 1, at5_hit = 0, at1_threshold = 1, at1_hit = 0;
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    if (sorted[i].positive) {
      ++tp;
      ap += static_cast<double>(tp) / static_cast<double>(i + 1);
    } else {
      ++fp;
    }
    if (static_cast<double>(fp) / neg_total <= 0.01) {
      at1_threshold = sorted[i].sim;
      at1_hit = static_cast<double>(tp) / pos_total;
    }
    if (static_cast<double>(fp) / neg_total <= 0.05) {
      at5_threshold = sorted[i].sim;
      at5_hit = static_cast<double>(tp) / pos_total;
    }
  }
  ap /= static_cast<double>(pos_total);
  std::printf("QQP pairs (%s): %zu duplicates, %zu non-duplicates\n", qqp.c_str(), pos_total,
              neg_total);
  std::printf(
      "average precision %.3f; at a 1%% false-hit rate: threshold %.3f, hit rate %.3f; at "
      "5%%: threshold %.3f, hit rate %.3f\n",
      ap, at1_threshold, at1_hit, at5_threshold, at5_hit);
  std::printf("%10s %10s %14s %12s\n", "threshold", "hit rate", "false-hit rate", "precision");
  std::string rows;
  for (float t = 0.5f; t <= 0.991f; t += (t < 0.89f ? 0.05f : 0.01f)) {
    std::size_t h = 0, fh = 0;
    for (const auto& p : pairs) {
      if (p.sim >= t) (p.positive ? h : fh)++;
    }
    double prec = h + fh ? static_cast<double>(h) / (h + fh) : 1;
    std::printf("%10.2f %10.3f %14.3f %12.3f\n", t, double(h) / pos_total, double(fh) / neg_total,
                prec);
    rows += std::string(rows.empty() ? "" : ",") + "{\"threshold\":" + std::to_string(t) +
            ",\"hit_rate\":" + std::to_string(double(h) / pos_total) +
            ",\"false_hit_rate\":" + std::to_string(double(fh) / neg_total) + "}";
  }

  if (dump_qqp_at > 0) {
    for (const auto& p : pairs)
      if (!p.positive && p.sim >= dump_qqp_at)
        std::printf("qqp non-duplicate served %.3f  %s | %s\n", p.sim, p.raw_a.c_str(),
                    p.raw_b.c_str());
  }

  // Guards on negation/antonym pairs.
  std::ifstream cin_(cannot);
  std::vector<Pair> cp;
  semcached::ReadCsvRecord(cin_, '\t', &f);
  while (semcached::ReadCsvRecord(cin_, '\t', &f)) {
    if (f.size() < 3) continue;
    cp.push_back({Norm(f[0]), Norm(f[1]), f[2] == "0", 0, f[0], f[1]});  // positive = equivalent
  }
  auto e2 = make();
  for (const auto& p : cp) {
    e2->Observe(p.a);
    e2->Observe(p.b);
  }
  semcached::cache::GuardOptions guards;
  std::printf("\nCANNOT pairs (%s): %zu not equivalent, %zu paraphrases\n", cannot.c_str(),
              static_cast<std::size_t>(
                  std::count_if(cp.begin(), cp.end(), [](const Pair& p) { return !p.positive; })),
              static_cast<std::size_t>(
                  std::count_if(cp.begin(), cp.end(), [](const Pair& p) { return p.positive; })));
  std::printf("%10s %24s %24s %22s\n", "threshold", "wrong served, no guards",
              "wrong served, guards", "paraphrases kept");
  std::string grows;
  for (auto& p : cp) p.sim = Cos(*e2->Embed(p.a), *e2->Embed(p.b));
  for (float t : {0.6f, 0.7f, 0.8f, 0.85f, 0.9f, 0.92f, 0.94f, 0.96f}) {
    std::size_t neg = 0, wrong = 0, wrong_guarded = 0, para = 0, para_above = 0, para_kept = 0;
    for (const auto& p : cp) {
      const bool pass = !Guarded(p, guards);
      if (!p.positive) {
        ++neg;
        if (p.sim >= t) ++wrong;
        if (p.sim >= t && pass) ++wrong_guarded;
      } else {
        ++para;
        if (p.sim >= t) ++para_above;
        if (p.sim >= t && pass) ++para_kept;
      }
    }
    std::printf("%10.2f %17.3f (%4zu) %17.3f (%4zu) %15.3f of %4zu\n", t, double(wrong) / neg,
                wrong, double(wrong_guarded) / neg, wrong_guarded,
                para_above ? double(para_kept) / para_above : 1.0, para_above);
    grows += std::string(grows.empty() ? "" : ",") + "{\"threshold\":" + std::to_string(t) +
             ",\"wrong_no_guards\":" + std::to_string(double(wrong) / neg) +
             ",\"wrong_guards\":" + std::to_string(double(wrong_guarded) / neg) + "}";
  }
  // Everyday rewordings (should be served) and traps (must not be), at each threshold.
  auto read_set = [&](const std::string& path) {
    std::vector<Pair> set;
    std::ifstream sin(path);
    semcached::ReadCsvRecord(sin, '\t', &f);
    while (semcached::ReadCsvRecord(sin, '\t', &f)) {
      if (f.size() >= 2) set.push_back({Norm(f[0]), Norm(f[1]), true, 0, f[0], f[1]});
    }
    auto se = make();
    for (auto& p : set) p.sim = Cos(*se->Embed(p.a), *se->Embed(p.b));
    return set;
  };
  const std::vector<Pair> reworded = read_set(rewordings), trapped = read_set(traps);
  std::printf("\nEveryday rewordings (%s, %zu pairs) and traps (%s, %zu pairs): share served\n",
              rewordings.c_str(), reworded.size(), traps.c_str(), trapped.size());
  std::printf("%10s %20s %20s %20s %20s\n", "threshold", "rewordings, no guards",
              "rewordings, guards", "traps, no guards", "traps, guards");
  auto served = [&](const std::vector<Pair>& set, float t, bool guarded) {
    std::size_t n = 0;
    for (const auto& p : set) {
      if (p.sim < t) continue;
      if (guarded && Guarded(p, guards)) continue;
      ++n;
    }
    return set.empty() ? 0.0 : static_cast<double>(n) / static_cast<double>(set.size());
  };
  for (float t = 0.70f; t <= 0.991f; t += 0.01f) {
    std::printf("%10.2f %20.3f %20.3f %20.3f %20.3f\n", t, served(reworded, t, false),
                served(reworded, t, true), served(trapped, t, false), served(trapped, t, true));
  }
  if (dump_at > 0) {
    for (const auto& p : trapped)
      if (p.sim >= dump_at && !Guarded(p, guards))
        std::printf("trap served   %.3f  %s | %s\n", p.sim, p.raw_a.c_str(), p.raw_b.c_str());
    for (const auto& p : reworded) {
      if (p.sim < dump_at) {
        std::printf("reword below  %.3f  %s | %s\n", p.sim, p.raw_a.c_str(), p.raw_b.c_str());
        continue;
      }
      using semcached::cache::GuardText;
      const auto v =
          semcached::cache::CheckGuards(GuardText(p.b, p.raw_b), GuardText(p.a, p.raw_a), guards);
      if (v != semcached::cache::GuardVerdict::kPass)
        std::printf("reword guarded (%s) %.3f  %s | %s\n", semcached::cache::GuardVerdictName(v),
                    p.sim, p.raw_a.c_str(), p.raw_b.c_str());
    }
  }
  if (std::FILE* out = std::fopen(json_out.c_str(), "w")) {
    std::fprintf(out,
                 "{\"ap\":%.4f,\"threshold_at_5pct_false_hits\":%.4f,\"hit_rate_at_5pct\":%.4f,"
                 "\"qqp\":[%s],\"cannot\":[%s]}\n",
                 ap, at5_threshold, at5_hit, rows.c_str(), grows.c_str());
    std::fclose(out);
  }
  return 0;
}
