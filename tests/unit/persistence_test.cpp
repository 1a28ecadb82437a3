// Persistence of embedded caches: snapshot + journal survive a restart, a torn journal tail
// is dropped, a corrupt snapshot is refused, and the index comes back without a rebuild.
#include <cstring>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "cache/embedded/embedded_cache.h"
#include "common/section_file.h"
#include "embed/builtin_embedder.h"
#include "test_support.h"

namespace semcached::cache {
namespace {

using testing::TempDir;

std::unique_ptr<EmbeddedCache> Open(const TempDir& dir, FsyncPolicy fsync = FsyncPolicy::kAlways,
                                    std::int64_t* now = nullptr) {
  CacheOptions o;
  o.id = "p1";
  EmbeddedOptions e;
  e.persist_dir = dir.path();
  e.fsync = fsync;
  e.originals_path = dir.File("p1.vectors.f32");
  EmbeddedCache::Clock clock;
  if (now != nullptr) clock = [now] { return *now; };
  auto c = EmbeddedCache::Create(o, std::make_unique<embed::BuiltinEmbedder>(), clock, e);
  if (!c.ok()) throw std::runtime_error(c.status().ToString());
  return std::move(*c);
}

std::optional<Hit> Find(EmbeddedCache& c, const std::string& prompt, Attributes attrs = {},
                        Strategy only = Strategy::kExact) {
  SearchQuery q;
  q.prompt = prompt;
  q.attributes = std::move(attrs);
  q.strategies = {only};
  auto r = c.Search(q);
  if (!r.ok() || r->empty()) return std::nullopt;
  return r->front();
}

std::string Prompt(int i) {
  return "question number " + std::to_string(i) + " about topic " + std::to_string(i * 7);
}

TEST(CachePersistence, EntriesSurviveARestartFromTheJournal) {
  TempDir dir;
  std::vector<std::string> ids;
  {
    auto c = Open(dir);
    for (int i = 0; i < 50; ++i) {
      auto id = c->Store(Prompt(i), "answer " + std::to_string(i), {{"user", i % 2 ? "a" : "b"}},
                         std::nullopt);
      ASSERT_TRUE(id.ok());
      ids.push_back(*id);
    }
    ASSERT_TRUE(c->Delete(ids[4]).ok());
    ASSERT_EQ(*c->DeleteByAttributes({{"user", "a"}}), 25u);
  }  // no snapshot: everything comes back from the journal
  auto c = Open(dir);
  EXPECT_EQ(c->restored_entries(), 24u);
  EXPECT_EQ(c->Stats().entries, 24u);
  for (int i = 0; i < 50; ++i) {
    auto hit = Find(*c, Prompt(i), {{"user", i % 2 ? "a" : "b"}});
    if (i % 2 == 1 || i == 4) {
      EXPECT_FALSE(hit) << i;
    } else {
      ASSERT_TRUE(hit) << i;
      EXPECT_EQ(hit->id, ids[i]);  // the same id after a restart
      EXPECT_EQ(hit->entry->response(), "answer " + std::to_string(i));
    }
  }
  // The semantic tier works on the restored index, and new entries get fresh labels.
  // The semantic tier answers from the restored index (snapshot or journal vectors).
  auto semantic = Find(*c, Prompt(10), {{"user", "b"}}, Strategy::kSemantic);
  ASSERT_TRUE(semantic);
  EXPECT_EQ(semantic->id, ids[10]);
  EXPECT_GT(semantic->similarity,
            0.95f);  // not 1: term weights are relearned from the entries that remain
  auto fresh = c->Store("a new question after the restart", "new", {}, std::nullopt);
  ASSERT_TRUE(fresh.ok());
  for (const auto& old : ids) EXPECT_NE(*fresh, old);
}

TEST(CachePersistence, AnotherEmbedderIsRefusedWithWhatChangedAndWhatToRun) {
  TempDir dir;
  { ASSERT_TRUE(Open(dir)->Store("hello there", "hi", {}, std::nullopt).ok()); }
  ASSERT_TRUE(std::filesystem::exists(dir.File("p1.embedder")));
  auto open_with = [&](std::size_t dim) {
    CacheOptions o;
    o.id = "p1";
    EmbeddedOptions e;
    e.persist_dir = dir.path();
    e.originals_path = dir.File("p1.vectors.f32");
    embed::BuiltinEmbedderOptions eo;
    eo.dim = dim;
    return EmbeddedCache::Create(o, std::make_unique<embed::BuiltinEmbedder>(eo), {}, e);
  };
  auto refused = open_with(256);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("dimensions 512 -> 256"), std::string::npos)
      << refused.status().message();
  EXPECT_NE(refused.status().message().find("semcached reembed p1"), std::string::npos);
  // Files from before the record: the dimensions decide, and the record is written.
  std::filesystem::remove(dir.File("p1.embedder"));
  EXPECT_FALSE(open_with(256).ok());
  ASSERT_TRUE(open_with(512).ok());
  EXPECT_TRUE(std::filesystem::exists(dir.File("p1.embedder")));
  EXPECT_TRUE(Find(*Open(dir), "hello there"));
}

TEST(CachePersistence, SnapshotThenJournalThenRestart) {
  TempDir dir;
  std::string kept;
  {
    auto c = Open(dir, FsyncPolicy::kEverySecond);
    for (int i = 0; i < 30; ++i) ASSERT_TRUE(c->Store(Prompt(i), "a", {}, std::nullopt).ok());
    ASSERT_TRUE(c->Snapshot().ok());
    EXPECT_TRUE(std::filesystem::exists(dir.File("p1.current")));
    EXPECT_TRUE(std::filesystem::exists(dir.File("p1.1.index")));
    // After the snapshot: more writes, a flush, and a few more.
    for (int i = 30; i < 40; ++i) ASSERT_TRUE(c->Store(Prompt(i), "b", {}, std::nullopt).ok());
    ASSERT_TRUE(c->Flush().ok());
    auto id = c->Store(Prompt(99), "kept", {}, std::nullopt);
    ASSERT_TRUE(id.ok());
    kept = *id;
    ASSERT_TRUE(c->Snapshot().ok());
    EXPECT_FALSE(std::filesystem::exists(dir.File("p1.1.index")));  // the old generation is gone
    ASSERT_TRUE(c->Store(Prompt(100), "after", {}, std::nullopt).ok());
  }
  auto c = Open(dir);
  EXPECT_EQ(c->Stats().entries, 2u);
  auto hit = Find(*c, Prompt(99));
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->id, kept);
  auto semantic =
      Find(*c, Prompt(99), {}, Strategy::kSemantic);  // its vector came from the snapshot's index
  ASSERT_TRUE(semantic);
  EXPECT_EQ(semantic->id, kept);
  EXPECT_TRUE(Find(*c, Prompt(100)));
  EXPECT_FALSE(Find(*c, Prompt(5)));
}

TEST(CachePersistence, TornJournalTailIsDroppedAndTheRestKept) {
  TempDir dir;
  {
    auto c = Open(dir);
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(c->Store(Prompt(i), "a", {}, std::nullopt).ok());
  }
  const std::string journal = dir.File("p1.0.journal");
  const auto size = std::filesystem::file_size(journal);
  // A record cut short, as a kill -9 in the middle of a write leaves it.
  std::filesystem::resize_file(journal, size - 7);
  {
    auto c = Open(dir);
    EXPECT_EQ(c->Stats().entries, 9u);
    EXPECT_FALSE(Find(*c, Prompt(9)));
    EXPECT_TRUE(Find(*c, Prompt(8)));
    ASSERT_TRUE(c->Store(Prompt(50), "after the tear", {}, std::nullopt).ok());
  }
  // The torn bytes were cut before appending: the new record is readable.
  auto c = Open(dir);
  EXPECT_EQ(c->Stats().entries, 10u);
  EXPECT_TRUE(Find(*c, Prompt(50)));
  // Garbage after whole records: the same.
  {
    std::ofstream out(journal, std::ios::app | std::ios::binary);
    out << "\x10\x00\x00\x00garbage-bytes";
  }
  EXPECT_EQ(Open(dir)->Stats().entries, 10u);
}

TEST(CachePersistence, CorruptSnapshotIsRefusedAndLeftForTheOperator) {
  TempDir dir;
  {
    auto c = Open(dir);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(c->Store(Prompt(i), "a", {}, std::nullopt).ok());
    ASSERT_TRUE(c->Snapshot().ok());
  }
  const std::string entries = dir.File("p1.1.entries");
  std::string bytes = testing::ReadFile(entries);
  bytes[bytes.size() / 2] ^= 0x40;
  testing::WriteFile(entries, bytes);
  CacheOptions o;
  o.id = "p1";
  EmbeddedOptions e;
  e.persist_dir = dir.path();
  auto c = EmbeddedCache::Create(o, std::make_unique<embed::BuiltinEmbedder>(), {}, e);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), ErrorCode::kDataLoss);
  EXPECT_NE(c.status().message().find("checksum"), std::string::npos) << c.status().message();
  EXPECT_TRUE(std::filesystem::exists(entries));  // nothing deleted
}

TEST(CachePersistence, TtlsAndExpiryComeBack) {
  TempDir dir;
  std::int64_t now = 1'000'000;
  {
    auto c = Open(dir, FsyncPolicy::kAlways, &now);
    ASSERT_TRUE(c->Store(Prompt(1), "short", {}, 1000).ok());
    ASSERT_TRUE(c->Store(Prompt(2), "long", {}, 60'000).ok());
    ASSERT_TRUE(c->Snapshot().ok());
    ASSERT_TRUE(c->Store(Prompt(3), "journal", {}, 1000).ok());
  }
  now += 2000;
  auto c = Open(dir, FsyncPolicy::kAlways, &now);
  EXPECT_FALSE(Find(*c, Prompt(1)));  // expired while down: never returned
  EXPECT_FALSE(Find(*c, Prompt(3)));
  EXPECT_TRUE(Find(*c, Prompt(2)));
  EXPECT_EQ(c->Sweep(), 2u);
}

// The labels adaptive thresholds and the what-if report rest on come back after a restart,
// the entry each belongs to with them; a damaged line is skipped, not fatal.
TEST(CachePersistence, LabelsComeBackWithTheirEntries) {
  TempDir dir;
  std::string id;
  TuningReport before;
  {
    auto c = Open(dir);
    auto stored = c->Store(Prompt(1), "answer 1", {}, std::nullopt);
    ASSERT_TRUE(stored.ok());
    id = *stored;
    Feedback right{Prompt(1), true, {}};
    Feedback wrong{Prompt(2), false, {}};
    ASSERT_TRUE(c->RecordFeedback(id, right).ok());
    ASSERT_TRUE(c->RecordFeedback(id, wrong).ok());
    before = c->Tuning(0.01);
    ASSERT_EQ(before.same + before.different, 2u);
    ASSERT_TRUE(c->Snapshot().ok());
  }
  {
    std::ofstream labels(dir.File("p1.labels"), std::ios::app);
    labels << "not a label\n" << id << " 7.5 0 1\n";  // neither parses as one
  }
  auto c = Open(dir);
  EXPECT_EQ(c->labels_added(), 2u);
  const TuningReport after = c->Tuning(0.01);
  EXPECT_EQ(after.same, before.same);
  EXPECT_EQ(after.different, before.different);
  // Oldest first, each with its entry: the file reads as the labels were recorded.
  const std::string text = c->SerializeLabels();
  EXPECT_EQ(text.substr(0, id.size()), id);
  EXPECT_NE(text.find(" 1\n" + id), std::string::npos) << text;
  EXPECT_EQ(text.substr(text.size() - 3), " 0\n");  // the wrong one, last
}

}  // namespace
}  // namespace semcached::cache

namespace semcached::cache {
namespace {

// A snapshot written before entries files had sections (version 1: the body, then one
// CRC-32) still loads: the version 2 file of a snapshot is rewritten in the old layout.
TEST(CachePersistence, VersionOneEntriesFilesStillLoad) {
  testing::TempDir dir;
  {
    auto c = Open(dir);
    for (int i = 0; i < 7; ++i)
      ASSERT_TRUE(c->Store(Prompt(i), "a" + std::to_string(i), {}, std::nullopt).ok());
    ASSERT_TRUE(c->Snapshot().ok());
  }
  const std::string entries = dir.File("p1.1.entries");
  const std::string v2 = testing::ReadFile(entries);
  ASSERT_EQ(v2.substr(0, 8), "SCENTRY2");
  // magic | HEAD header (16) | next label, count | ENTS header (16) | entries | END! header
  const std::string head = v2.substr(8 + 16, 16);
  std::uint64_t ents_length = 0;
  std::memcpy(&ents_length, v2.data() + 8 + 16 + 16 + 4, 8);
  const std::string body = head + v2.substr(8 + 16 + 16 + 16, ents_length);
  const std::uint32_t crc = Crc32(body);
  testing::WriteFile(entries,
                     "SCENTRY1" + body + std::string(reinterpret_cast<const char*>(&crc), 4));
  auto c = Open(dir);
  EXPECT_EQ(c->Stats().entries, 7u);
  EXPECT_TRUE(Find(*c, Prompt(3)));
}

}  // namespace
}  // namespace semcached::cache
