#include "app/model_pull.h"

#include <openssl/evp.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>

#include <nlohmann/json.hpp>

#include "common/hash.h"
#include "common/http_client.h"
#include "embed/static_embedder.h"

namespace semcached::app {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct HubFile {
  std::string name;
  std::uint64_t size = 0;
  std::string sha256;    // LFS files
  std::string git_sha1;  // every file: the git blob id
};

// The files a static model may need; anything else in the repository (ONNX exports, PyTorch
// weights, images) is left on the hub.
bool Wanted(const std::string& name) {
  static const std::regex kWanted(
      R"((0_StaticEmbedding/)?(config\.json|config_sentence_transformers\.json|modules\.json|)"
      R"(tokenizer\.json|model\.safetensors|README\.md|LICENSE(\.md|\.txt)?))");
  return std::regex_match(name, kWanted);
}

// Incremental digests over OpenSSL's EVP interface.
class Digest {
 public:
  explicit Digest(const EVP_MD* md) : ctx_(EVP_MD_CTX_new()) {
    EVP_DigestInit_ex(ctx_, md, nullptr);
  }
  ~Digest() { EVP_MD_CTX_free(ctx_); }
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;
  void Update(std::string_view bytes) { EVP_DigestUpdate(ctx_, bytes.data(), bytes.size()); }
  std::string Hex() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_, out, &n);
    return LowerHex(out, n);
  }

 private:
  EVP_MD_CTX* ctx_;
};

// Checks a downloaded file against what the hub said of it.
Status Verify(const fs::path& path, const HubFile& f) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Unavailable("cannot read " + path.string());
  Digest sha256(EVP_sha256()), sha1(EVP_sha1());
  const std::uint64_t size = fs::file_size(path);
  const std::string blob_header = "blob " + std::to_string(size) + std::string(1, '\0');
  sha1.Update(blob_header);
  std::string buf(1 << 20, '\0');
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto got = static_cast<std::size_t>(in.gcount());
    sha256.Update(std::string_view(buf.data(), got));
    sha1.Update(std::string_view(buf.data(), got));
  }
  if (f.size != 0 && size != f.size)
    return DataLoss(f.name + ": " + std::to_string(size) + " bytes, the hub states " +
                    std::to_string(f.size));
  if (!f.sha256.empty()) {
    const std::string got = sha256.Hex();
    if (got != f.sha256)
      return DataLoss(f.name + ": sha256 " + got + ", the hub states " + f.sha256);
  } else if (!f.git_sha1.empty()) {
    const std::string got = sha1.Hex();
    if (got != f.git_sha1)
      return DataLoss(f.name + ": git blob sha1 " + got + ", the hub states " + f.git_sha1);
  } else {
    return DataLoss(f.name + ": the hub states no digest for it");
  }
  return Status::Ok();
}

std::string Human(double bytes) {
  const char* units[] = {"B", "KB", "MB", "GB"};
  int u = 0;
  while (bytes >= 1024 && u < 3) {
    bytes /= 1024;
    ++u;
  }
  char out[32];
  std::snprintf(out, sizeof out, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
  return out;
}

class ProgressBar {
 public:
  ProgressBar(bool on, std::string name, std::uint64_t total)
      : on_(on), name_(std::move(name)), total_(total), start_(Clock::now()) {}
  void Show(std::uint64_t done, bool final = false) {
    if (!on_) return;
    const auto now = Clock::now();
    if (!final && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double share = total_ ? static_cast<double>(done) / static_cast<double>(total_) : 1.0;
    const int width = 30, filled = static_cast<int>(share * width);
    std::fprintf(stderr, "\r  %-28s [%s%s] %3.0f%% %s/%s %s/s", name_.c_str(),
                 std::string(static_cast<std::size_t>(filled), '#').c_str(),
                 std::string(static_cast<std::size_t>(width - filled), ' ').c_str(), share * 100,
                 Human(static_cast<double>(done)).c_str(),
                 Human(static_cast<double>(total_)).c_str(),
                 Human(secs > 0 ? static_cast<double>(done) / secs : 0).c_str());
    if (final) std::fprintf(stderr, "\n");
  }

 private:
  using Clock = std::chrono::steady_clock;
  bool on_;
  std::string name_;
  std::uint64_t total_;
  Clock::time_point start_, last_{};
};

// One attempt: appends to `part` from its current size (Range), or starts it over when the
// server ignores the range.
Status DownloadOnce(HttpClient& http, const std::string& url, const fs::path& part,
                    ProgressBar& bar) {
  std::error_code ec;
  const std::uint64_t have = fs::exists(part, ec) ? fs::file_size(part, ec) : 0;
  HttpRequest req;
  req.method = "GET";
  req.url = url;
  req.timeout_ms = 6 * 3600 * 1000;  // big files on slow links; a stall ends in an error
  if (have > 0) req.headers.push_back("Range: bytes=" + std::to_string(have) + "-");
  std::ofstream out;
  std::uint64_t written = have;
  Status write_error;
  req.on_data = [&](int status, const std::string&, std::string_view piece) {
    if (!out.is_open()) {
      if (status == 206) {
        out.open(part, std::ios::binary | std::ios::app);
      } else if (status == 200) {
        out.open(part, std::ios::binary | std::ios::trunc);  // the whole file again
        written = 0;
      } else {
        return true;  // an error body: collected below by status
      }
    }
    out.write(piece.data(), static_cast<std::streamsize>(piece.size()));
    if (!out) {
      write_error = Unavailable("cannot write " + part.string());
      return false;
    }
    written += piece.size();
    bar.Show(written);
    return true;
  };
  auto res = http.Perform(req);
  out.close();
  if (!write_error.ok()) return write_error;
  if (!res.ok()) return res.status();
  if (res->status == 416 && have > 0) return Status::Ok();  // already whole
  if (res->status == 404) return NotFound(url + ": 404 not found");
  if (res->status != 200 && res->status != 206)
    return Unavailable(url + ": HTTP " + std::to_string(res->status));
  return Status::Ok();
}

}  // namespace

int RunModelPull(const Config& config, const ModelPullOptions& options) {
  auto fail = [](int code, const std::string& why) {
    std::cerr << "semcached model pull: " << why << "\n";
    return code;
  };
  const std::string repo = options.model.substr(0, options.model.find('@'));
  const std::string revision = options.model.find('@') == std::string::npos
                                   ? "main"
                                   : options.model.substr(options.model.find('@') + 1);
  static const std::regex kRepo(R"([A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*)");
  if (!std::regex_match(repo, kRepo) || revision.empty() || revision.find('/') != std::string::npos)
    return fail(2, "'" + options.model + "' is not OWNER/NAME[@REVISION]");
  const std::string models_dir = !options.models_dir.empty()  ? options.models_dir
                                 : !config.models_dir.empty() ? config.models_dir
                                                              : config.data_dir + "/models";
  std::string hub = options.hub_url;
  while (!hub.empty() && hub.back() == '/') hub.pop_back();

  HttpClient http;
  HttpRequest list;
  list.method = "GET";
  list.url = hub + "/api/models/" + repo + "/revision/" + revision + "?blobs=true";
  list.timeout_ms = 30'000;
  auto listed = http.Perform(list);
  if (!listed.ok()) return fail(1, list.url + ": " + listed.status().message());
  if (listed->status == 404 || listed->status == 401)
    return fail(2, repo + "@" + revision + " is not on " + hub + " (HTTP " +
                       std::to_string(listed->status) + ")");
  if (listed->status != 200) return fail(1, list.url + ": HTTP " + std::to_string(listed->status));
  const json info = json::parse(listed->body, nullptr, /*allow_exceptions=*/false);
  if (info.is_discarded() || !info.contains("siblings") || !info["siblings"].is_array())
    return fail(1, list.url + ": not a model listing");
  std::vector<HubFile> files;
  for (const auto& s : info["siblings"]) {
    HubFile f;
    f.name = s.value("rfilename", "");
    if (!Wanted(f.name)) continue;
    f.size = s.value("size", std::uint64_t{0});
    f.git_sha1 = s.value("blobId", "");
    if (auto lfs = s.find("lfs"); lfs != s.end() && lfs->is_object()) {
      f.sha256 = lfs->value("sha256", "");
      f.size = lfs->value("size", f.size);
    }
    files.push_back(std::move(f));
  }
  if (files.empty()) return fail(2, repo + "@" + revision + " holds no static model files");
  const std::string commit = info.value("sha", revision);

  const fs::path dir = fs::path(models_dir) / repo;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return fail(1, "cannot create " + dir.string() + ": " + ec.message());
  std::cerr << "pulling " << repo << "@" << revision << " (" << commit << ") into " << dir.string()
            << "\n";
  for (const HubFile& f : files) {
    const fs::path target = dir / f.name;
    fs::create_directories(target.parent_path(), ec);
    if (fs::exists(target, ec) && Verify(target, f).ok()) {
      std::cerr << "  " << f.name << ": already here, verified\n";
      continue;
    }
    const fs::path part = target.string() + ".part";
    const std::string url = hub + "/" + repo + "/resolve/" + commit + "/" + f.name;
    ProgressBar bar(options.progress, f.name, f.size);
    Status s;
    for (int attempt = 1; attempt <= options.attempts; ++attempt) {
      s = DownloadOnce(http, url, part, bar);
      const std::uint64_t have = fs::exists(part, ec) ? fs::file_size(part, ec) : 0;
      if (s.ok() && (f.size == 0 || have >= f.size)) break;
      if (s.code() == ErrorCode::kNotFound) break;
      if (s.ok()) s = Unavailable("the transfer ended at " + std::to_string(have) + " bytes");
      if (options.progress) std::fprintf(stderr, "\n");
      std::cerr << "  " << f.name << ": " << s.message() << "; resuming at " << Human(have)
                << " (attempt " << attempt + 1 << " of " << options.attempts << ")\n";
    }
    if (!s.ok()) return fail(1, f.name + ": " + s.message() + " (run again to resume)");
    bar.Show(f.size, /*final=*/true);
    if (Status v = Verify(part, f); !v.ok()) {
      fs::remove(part, ec);  // a corrupt part must not be resumed
      return fail(1, v.message());
    }
    fs::rename(part, target, ec);
    if (ec) return fail(1, "cannot rename " + part.string() + ": " + ec.message());
  }
  // What was pulled, for the record (and for the next pull to compare with).
  json record = {{"repo", repo}, {"revision", revision}, {"commit", commit}, {"hub", hub}};
  for (const HubFile& f : files)
    record["files"][f.name] = f.sha256.empty() ? "git-sha1:" + f.git_sha1 : "sha256:" + f.sha256;
  std::ofstream(dir / ".semcached-pull.json") << record.dump(2) << "\n";

  auto model_files = embed::ReadStaticModelDir(dir.string());
  if (!model_files.ok()) return fail(1, model_files.status().message());
  model_files->name = repo;
  auto model = embed::StaticEmbedder::Load(*model_files);
  if (!model.ok()) return fail(1, model.status().message());
  std::cerr << "pulled " << repo << ": " << (*model)->tokenizer().Describe() << ", "
            << (*model)->dim() << " dimensions. Use it with embedder_model = \"" << repo << "\"\n";
  return 0;
}

}  // namespace semcached::app
