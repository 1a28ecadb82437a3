// Durability of an embedded cache: a snapshot (entries + the HNSW index as saved by the
// vector engine, so nothing is rebuilt on load) and a journal of every change since.
//
// Files in the data directory, for cache `id` at generation G:
//   id.current          the live generation G, replaced atomically (common/durable_file.h)
//   id.G.entries        entries of the snapshot, in checksummed sections
//   id.G.index          HnswIndex::Save of the same moment
//   id.G.journal        records appended after the snapshot: [length][CRC-32][payload]
// A snapshot writes generation G+1 completely, then switches `current`, then deletes G; a
// crash at any point leaves one complete generation. A journal ends at its first torn or
// corrupt record (a write cut short by kill -9): that record was never acknowledged under
// fsync "always", and is at most a second old under "everysec".
// Must not: know about HTTP, or decide what an entry is (the cache passes records in).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "vector/hnsw_index.h"

namespace semcached::cache {

enum class FsyncPolicy { kAlways, kEverySecond, kNo };
bool ParseFsyncPolicy(std::string_view text, FsyncPolicy* out);

// One entry as it is written to disk.
struct StoredEntry {
  std::uint64_t label = 0;
  std::uint64_t tag = 0;
  std::int64_t created_ms = 0;
  std::int64_t expires_ms = 0;
  std::int64_t ttl_ms = 0;
  std::string prompt;
  std::string response;
  std::map<std::string, std::string> attributes;
  std::vector<float> vector;  // journal records only: the snapshot's vectors are in the index
};

struct JournalRecord {
  enum class Type : std::uint8_t { kStore = 1, kDelete = 2, kFlush = 3 };
  Type type = Type::kStore;
  StoredEntry entry;        // kStore
  std::uint64_t label = 0;  // kDelete
};

// What Load found.
struct LoadedState {
  std::vector<StoredEntry> entries;          // the snapshot's
  std::unique_ptr<vector::HnswIndex> index;  // null: no snapshot yet
  std::uint64_t next_label = 1;
  std::vector<JournalRecord> journal;  // to replay, in order
  std::size_t torn_bytes = 0;          // cut from the journal's end
};

// Deletes every file of cache `id` in `dir` (snapshots, journals, vector files): the names
// that start with "<id>." (cache ids hold no dots, so no other cache's files match).
Status RemoveCacheFiles(const std::string& dir, const std::string& id);

class CachePersistence {
 public:
  // Opens (creating the directory's files when absent) and reads what is there.
  static Result<std::unique_ptr<CachePersistence>> Open(
      const std::string& dir, const std::string& id, FsyncPolicy fsync, LoadedState* loaded,
      const vector::HnswIndex::LoadOptions& index_options);
  ~CachePersistence();

  // Appends and, under kAlways, syncs before returning: Ok means durable.
  Status Append(const JournalRecord& record);
  // Writes a new generation from the cache's state (the caller blocks writes meanwhile) and
  // starts an empty journal. `entries` calls its argument once for each of `count` entries.
  using EntrySource = std::function<void(const std::function<void(const StoredEntry&)>& emit)>;
  Status Snapshot(std::uint64_t count, const EntrySource& entries, const vector::HnswIndex& index,
                  std::uint64_t next_label);
  std::size_t journal_bytes() const;
  FsyncPolicy fsync() const { return fsync_; }

 private:
  CachePersistence(std::string dir, std::string id, FsyncPolicy fsync);
  std::string Path(std::uint64_t generation, const char* kind) const;
  Status OpenJournal(std::uint64_t generation, std::size_t keep_bytes);
  void SyncLoop();

  std::string dir_, id_;
  FsyncPolicy fsync_;
  std::uint64_t generation_ = 0;
  mutable std::mutex mu_;
  int fd_ = -1;
  std::size_t journal_bytes_ = 0;
  bool dirty_ = false;
  bool stop_ = false;
  std::condition_variable cv_;
  std::thread syncer_;  // everysec: fdatasync once a second when something was written
};

}  // namespace semcached::cache
