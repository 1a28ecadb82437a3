#include "cache/embedded/persistence.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include <spdlog/spdlog.h>

#include "common/durable_file.h"
#include "common/section_file.h"

namespace semcached::cache {

namespace {

// Version 2 frames the entries in checksummed sections (common/section_file.h): HEAD (next
// label, count), ENTS (the entries), END!. Version 1 (one CRC-32 after the body) is still read.
constexpr char kEntriesMagicV1[8] = {'S', 'C', 'E', 'N', 'T', 'R', 'Y', '1'};
constexpr char kEntriesMagic[8] = {'S', 'C', 'E', 'N', 'T', 'R', 'Y', '2'};
constexpr std::uint32_t kHead = SectionTag("HEAD"), kEnts = SectionTag("ENTS"),
                        kEnd = SectionTag("END!");
constexpr std::size_t kMaxRecord = 256u << 20;

// Little-endian fields, as the vector engine's files (x86-64 only).
class Writer {
 public:
  template <typename T>
  void Put(T v) {
    out_.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void Str(const std::string& s) {
    Put<std::uint32_t>(static_cast<std::uint32_t>(s.size()));
    out_ += s;
  }
  void Entry(const StoredEntry& e, bool with_vector) {
    Put(e.label);
    Put(e.tag);
    Put(e.created_ms);
    Put(e.expires_ms);
    Put(e.ttl_ms);
    Str(e.prompt);
    Str(e.response);
    Put<std::uint32_t>(static_cast<std::uint32_t>(e.attributes.size()));
    for (const auto& [k, v] : e.attributes) {
      Str(k);
      Str(v);
    }
    if (with_vector) {
      Put<std::uint32_t>(static_cast<std::uint32_t>(e.vector.size()));
      out_.append(reinterpret_cast<const char*>(e.vector.data()), e.vector.size() * sizeof(float));
    }
  }
  std::string& bytes() { return out_; }

 private:
  std::string out_;
};

class Reader {
 public:
  Reader(const char* data, std::size_t size) : p_(data), end_(data + size) {}
  template <typename T>
  bool Get(T* v) {
    if (static_cast<std::size_t>(end_ - p_) < sizeof(T)) return false;
    std::memcpy(v, p_, sizeof(T));
    p_ += sizeof(T);
    return true;
  }
  bool Str(std::string* s) {
    std::uint32_t n;
    if (!Get(&n) || static_cast<std::size_t>(end_ - p_) < n) return false;
    s->assign(p_, n);
    p_ += n;
    return true;
  }
  bool Entry(StoredEntry* e, bool with_vector) {
    std::uint32_t attrs;
    if (!Get(&e->label) || !Get(&e->tag) || !Get(&e->created_ms) || !Get(&e->expires_ms) ||
        !Get(&e->ttl_ms) || !Str(&e->prompt) || !Str(&e->response) || !Get(&attrs)) {
      return false;
    }
    for (std::uint32_t i = 0; i < attrs; ++i) {
      std::string k, v;
      if (!Str(&k) || !Str(&v)) return false;
      e->attributes.emplace(std::move(k), std::move(v));
    }
    if (!with_vector) return true;
    std::uint32_t dim;
    if (!Get(&dim) || static_cast<std::size_t>(end_ - p_) < dim * sizeof(float)) return false;
    e->vector.resize(dim);
    std::memcpy(e->vector.data(), p_, dim * sizeof(float));
    p_ += dim * sizeof(float);
    return true;
  }
  bool done() const { return p_ == end_; }

 private:
  const char* p_;
  const char* end_;
};

// An entries file, checked whole before any entry is parsed.
struct EntriesFile {
  std::uint64_t next_label = 0, count = 0;
  std::string entries;  // `count` entries, as Writer::Entry writes them
};

Result<EntriesFile> ReadEntriesFile(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return DataLoss("snapshot " + path + " is missing");
  std::unique_ptr<FILE, int (*)(FILE*)> closer(f, std::fclose);
  std::fseek(f, 0, SEEK_END);
  const long size = std::ftell(f);
  std::fseek(f, 0, SEEK_SET);
  char magic[8];
  if (size < 8 || std::fread(magic, 1, 8, f) != 8) {
    return DataLoss(path + " is not a semcached entries file");
  }
  EntriesFile file;
  if (std::memcmp(magic, kEntriesMagicV1, 8) == 0) {
    // Version 1: next label, count and entries, then the CRC-32 of all of them.
    std::string rest(static_cast<std::size_t>(size) - 8, '\0');
    if (rest.size() < 16 + 4 || std::fread(rest.data(), 1, rest.size(), f) != rest.size()) {
      return DataLoss(path + " is truncated");
    }
    std::uint32_t crc;
    std::memcpy(&crc, rest.data() + rest.size() - 4, 4);
    rest.resize(rest.size() - 4);
    if (Crc32(rest) != crc) return DataLoss(path + " fails its checksum");
    std::memcpy(&file.next_label, rest.data(), 8);
    std::memcpy(&file.count, rest.data() + 8, 8);
    file.entries = rest.substr(16);
    return file;
  }
  if (std::memcmp(magic, kEntriesMagic, 8) != 0) {
    return DataLoss(path + " is not a semcached entries file");
  }
  SectionReader r(f, static_cast<std::uint64_t>(size), "entries file " + path + " is damaged");
  Status s = r.Open(kHead, "HEAD");
  if (s.ok()) s = r.ChunkPod(&file.next_label);
  if (s.ok()) s = r.ChunkPod(&file.count);
  if (s.ok()) s = r.Close();
  if (s.ok()) s = r.Open(kEnts, "ENTS");
  if (s.ok()) {
    file.entries.resize(r.left());
    s = r.Chunk(file.entries.data(), file.entries.size());
  }
  if (s.ok()) s = r.Close();
  if (s.ok()) s = r.Open(kEnd, "END!");
  if (s.ok()) s = r.Close();
  if (!s.ok()) return s;
  return file;
}

}  // namespace

bool ParseFsyncPolicy(std::string_view text, FsyncPolicy* out) {
  if (text == "always")
    *out = FsyncPolicy::kAlways;
  else if (text == "everysec")
    *out = FsyncPolicy::kEverySecond;
  else if (text == "no")
    *out = FsyncPolicy::kNo;
  else
    return false;
  return true;
}

CachePersistence::CachePersistence(std::string dir, std::string id, FsyncPolicy fsync)
    : dir_(std::move(dir)), id_(std::move(id)), fsync_(fsync) {}

CachePersistence::~CachePersistence() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (syncer_.joinable()) syncer_.join();
  if (fd_ >= 0) {
    if (fsync_ != FsyncPolicy::kNo) ::fdatasync(fd_);
    ::close(fd_);
  }
}

std::string CachePersistence::Path(std::uint64_t generation, const char* kind) const {
  return dir_ + "/" + id_ + "." + std::to_string(generation) + "." + kind;
}

Result<std::unique_ptr<CachePersistence>> CachePersistence::Open(
    const std::string& dir, const std::string& id, FsyncPolicy fsync, LoadedState* loaded,
    const vector::HnswIndex::LoadOptions& index_options) {
  std::unique_ptr<CachePersistence> p(new CachePersistence(dir, id, fsync));
  const std::string current = dir + "/" + id + ".current";
  auto text = ReadWholeFile(current);
  if (text.ok()) {
    try {
      p->generation_ = std::stoull(*text);
    } catch (...) {
      return DataLoss(current + " does not hold a generation number");
    }
  }
  if (p->generation_ > 0) {
    // The snapshot: entries, then the index.
    const std::string path = p->Path(p->generation_, "entries");
    auto file = ReadEntriesFile(path);
    if (!file.ok()) return file.status();
    const std::uint64_t count = file->count;
    loaded->next_label = file->next_label;
    if (count > file->entries.size()) {
      return DataLoss("entries file " + path + " announces too many entries");
    }
    Reader r(file->entries.data(), file->entries.size());
    loaded->entries.reserve(count);
    for (std::uint64_t i = 0; i < count; ++i) {
      StoredEntry e;
      if (!r.Entry(&e, false))
        return DataLoss("entries file is truncated at entry " + std::to_string(i));
      loaded->entries.push_back(std::move(e));
    }
    auto index = vector::HnswIndex::Load(p->Path(p->generation_, "index"), index_options);
    if (!index.ok()) return index.status();
    loaded->index = std::move(*index);
  }
  // The journal: records up to the first torn or corrupt one.
  std::size_t valid = 0;
  auto journal = ReadWholeFile(p->Path(p->generation_, "journal"));
  if (journal.ok()) {
    const std::string& j = *journal;
    std::size_t next = 0;
    std::string_view payload;
    while (NextRecord(j, &next, &payload, kMaxRecord)) {
      Reader r(payload.data(), payload.size());
      JournalRecord rec;
      std::uint8_t type;
      if (!r.Get(&type)) break;
      rec.type = static_cast<JournalRecord::Type>(type);
      bool ok = false;
      if (rec.type == JournalRecord::Type::kStore) ok = r.Entry(&rec.entry, true);
      if (rec.type == JournalRecord::Type::kDelete) ok = r.Get(&rec.label);
      if (rec.type == JournalRecord::Type::kFlush) ok = true;
      if (!ok || !r.done()) break;
      loaded->journal.push_back(std::move(rec));
      valid = next;
    }
    loaded->torn_bytes = j.size() - valid;
    if (loaded->torn_bytes > 0) {
      spdlog::warn("cache {}: journal ends with {} bytes of a write that did not complete; dropped",
                   id, loaded->torn_bytes);
    }
  }
  if (Status s = p->OpenJournal(p->generation_, valid); !s.ok()) return s;
  if (fsync == FsyncPolicy::kEverySecond)
    p->syncer_ = std::thread([raw = p.get()] { raw->SyncLoop(); });
  return p;
}

Status CachePersistence::OpenJournal(std::uint64_t generation, std::size_t keep_bytes) {
  const std::string path = Path(generation, "journal");
  const bool created = ::access(path.c_str(), F_OK) != 0;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Unavailable("cannot open " + path + ": " + std::strerror(errno));
  // A new file's name is durable only once its directory is synced.
  if (created) {
    if (Status s = SyncDirectory(dir_); !s.ok()) {
      ::close(fd);
      return s;
    }
  }
  if (::ftruncate(fd, static_cast<off_t>(keep_bytes)) != 0 || ::lseek(fd, 0, SEEK_END) < 0) {
    ::close(fd);
    return Unavailable("cannot prepare " + path + ": " + std::strerror(errno));
  }
  std::lock_guard lock(mu_);
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  journal_bytes_ = keep_bytes;
  return Status::Ok();
}

Status CachePersistence::Append(const JournalRecord& record) {
  Writer w;
  w.Put(static_cast<std::uint8_t>(record.type));
  if (record.type == JournalRecord::Type::kStore) w.Entry(record.entry, true);
  if (record.type == JournalRecord::Type::kDelete) w.Put(record.label);
  const std::string bytes = FrameRecord(w.bytes());
  std::lock_guard lock(mu_);
  std::size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd_, bytes.data() + off, bytes.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      // Cut what was written of this record, so the journal stays a sequence of whole ones.
      if (::ftruncate(fd_, static_cast<off_t>(journal_bytes_)) == 0) ::lseek(fd_, 0, SEEK_END);
      return Unavailable("cache " + id_ + ": cannot write the journal: " + std::strerror(errno));
    }
    off += static_cast<std::size_t>(n);
  }
  journal_bytes_ += bytes.size();
  if (fsync_ == FsyncPolicy::kAlways) {
    if (::fdatasync(fd_) != 0)
      return Unavailable("cache " + id_ + ": fdatasync: " + std::strerror(errno));
  } else {
    dirty_ = true;
  }
  return Status::Ok();
}

void CachePersistence::SyncLoop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; });
    if (dirty_ && fd_ >= 0) {
      dirty_ = false;
      ::fdatasync(fd_);
    }
  }
}

Status CachePersistence::Snapshot(std::uint64_t count, const EntrySource& entries,
                                  const vector::HnswIndex& index, std::uint64_t next_label) {
  const std::uint64_t next = generation_ + 1;
  // Entries are written as they come, a buffer's worth at a time, never all held at once: a
  // cache of many gigabytes of text is not copied whole to be saved.
  DurableFile file(Path(next, "entries"));
  if (Status s = file.Open(); !s.ok()) return s;
  SectionWriter w(file);
  w.Raw(kEntriesMagic, sizeof kEntriesMagic);
  w.Section(kHead, 16, [&] {
    w.ChunkPod(next_label);
    w.ChunkPod(count);
  });
  w.Begin(kEnts);
  Writer body;
  auto flush = [&] {
    w.Chunk(body.bytes().data(), body.bytes().size());
    body.bytes().clear();
  };
  std::uint64_t written = 0;
  entries([&](const StoredEntry& e) {
    body.Entry(e, false);
    ++written;
    if (body.bytes().size() >= (1u << 20)) flush();
  });
  flush();
  w.End();
  w.Section(kEnd, 0, [] {});
  if (!w.ok()) return w.status();
  if (written != count) {
    return Internal("snapshot of cache " + id_ + ": " + std::to_string(written) +
                    " entries written, " + std::to_string(count) + " announced");
  }
  if (Status s = file.Commit(); !s.ok()) return s;
  if (Status s = index.Save(Path(next, "index")); !s.ok()) return s;  // durable itself
  if (Status s = WriteFileDurably(Path(next, "journal"), ""); !s.ok()) return s;
  // The switch: until `current` names the new generation, the old one is whole and in use.
  if (Status s = WriteFileDurably(dir_ + "/" + id_ + ".current", std::to_string(next) + "\n");
      !s.ok())
    return s;
  if (Status s = OpenJournal(next, 0); !s.ok()) return s;
  const std::uint64_t old = generation_;
  generation_ = next;
  std::error_code ec;
  for (const char* kind : {"entries", "index", "journal"})
    std::filesystem::remove(Path(old, kind), ec);
  return Status::Ok();
}

Status RemoveCacheFiles(const std::string& dir, const std::string& id) {
  std::error_code ec;
  const std::string prefix = id + ".";
  std::vector<std::filesystem::path> doomed;
  for (const auto& f : std::filesystem::directory_iterator(dir, ec)) {
    if (f.path().filename().string().rfind(prefix, 0) == 0) doomed.push_back(f.path());
  }
  if (ec) return Unavailable("cannot list " + dir + ": " + ec.message());
  for (const auto& p : doomed) {
    std::filesystem::remove(p, ec);
    if (ec) return Unavailable("cannot delete " + p.string() + ": " + ec.message());
  }
  return Status::Ok();
}

std::size_t CachePersistence::journal_bytes() const {
  std::lock_guard lock(mu_);
  return journal_bytes_;
}

}  // namespace semcached::cache
