// The durable writer (common/durable_file.h) and the section framing (common/section_file.h):
// the order of the system calls, above all the directory fsync after the rename, retries on
// EINTR and short writes, and that a failure leaves the old file and no temporary one.
#include "common/durable_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "common/section_file.h"
#include "test_support.h"

namespace semcached {
namespace {

// The real file system, with every call recorded and chosen calls made to fail.
class RecordingFileSystem final : public FileSystem {
 public:
  std::vector<std::string> calls;
  int interrupt_writes = 0;     // this many writes fail with EINTR first
  std::size_t short_write = 0;  // nonzero: each write takes at most this many bytes
  bool fail_fsync = false;
  bool fail_rename = false;

  int Open(const char* path, int flags, mode_t mode) override {
    int fd = SystemFileSystem().Open(path, flags, mode);
    fds_[fd] = path;
    calls.push_back(std::string((flags & O_DIRECTORY) ? "opendir " : "open ") + Name(path));
    return fd;
  }
  ssize_t Write(int fd, const void* data, std::size_t size) override {
    if (interrupt_writes > 0) {
      --interrupt_writes;
      calls.push_back("write-eintr");
      errno = EINTR;
      return -1;
    }
    if (short_write != 0) size = std::min(size, short_write);
    calls.push_back("write " + Name(fds_[fd]));
    return SystemFileSystem().Write(fd, data, size);
  }
  ssize_t PWrite(int fd, const void* data, std::size_t size, off_t offset) override {
    calls.push_back("pwrite " + Name(fds_[fd]));
    return SystemFileSystem().PWrite(fd, data, size, offset);
  }
  int Fsync(int fd) override {
    calls.push_back("fsync " + Name(fds_[fd]));
    if (fail_fsync) {
      errno = EIO;
      return -1;
    }
    return SystemFileSystem().Fsync(fd);
  }
  int Close(int fd) override {
    calls.push_back("close " + Name(fds_[fd]));
    return SystemFileSystem().Close(fd);
  }
  int Rename(const char* from, const char* to) override {
    calls.push_back("rename " + Name(from) + " " + Name(to));
    if (fail_rename) {
      errno = EXDEV;
      return -1;
    }
    return SystemFileSystem().Rename(from, to);
  }
  int Unlink(const char* path) override {
    calls.push_back("unlink " + Name(path));
    return SystemFileSystem().Unlink(path);
  }
  // Paths are reported by their last component; the directory as "dir".
  std::string dir;

 private:
  std::string Name(const std::string& path) const {
    if (path == dir) return "dir";
    return std::filesystem::path(path).filename().string();
  }
  std::map<int, std::string> fds_;
};

std::vector<std::string> Without(const std::vector<std::string>& calls, const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& c : calls) {
    if (c.rfind(prefix, 0) != 0) out.push_back(c);
  }
  return out;
}

TEST(DurableFile, RenamesThenSyncsTheDirectory) {
  testing::TempDir dir;
  RecordingFileSystem fs;
  fs.dir = dir.path();
  const std::string path = dir.File("state.json");
  ASSERT_TRUE(WriteFileDurably(path, "{\"a\":1}\n", 0600, &fs).ok());
  const std::vector<std::string> expected = {"open state.json.tmp",
                                             "write state.json.tmp",
                                             "fsync state.json.tmp",
                                             "close state.json.tmp",
                                             "rename state.json.tmp state.json",
                                             "opendir dir",
                                             "fsync dir",
                                             "close dir"};
  EXPECT_EQ(fs.calls, expected);
  EXPECT_EQ(testing::ReadFile(path), "{\"a\":1}\n");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

TEST(DurableFile, RetriesInterruptedAndShortWrites) {
  testing::TempDir dir;
  RecordingFileSystem fs;
  fs.dir = dir.path();
  fs.interrupt_writes = 2;
  fs.short_write = 3;
  const std::string path = dir.File("f");
  const std::string text = "0123456789abcdefghij";
  ASSERT_TRUE(WriteFileDurably(path, text, 0644, &fs).ok());
  EXPECT_EQ(testing::ReadFile(path), text);
  auto writes = Without(Without(fs.calls, "open"), "close");
  EXPECT_EQ(writes[0], "write-eintr");
  EXPECT_EQ(writes[1], "write-eintr");
  EXPECT_EQ(std::count(writes.begin(), writes.end(), "write f.tmp"), 7);  // 20 bytes, 3 a call
}

TEST(DurableFile, FailedFsyncKeepsTheOldFileAndLeavesNoTemporary) {
  testing::TempDir dir;
  const std::string path = dir.File("f");
  testing::WriteFile(path, "old");
  RecordingFileSystem fs;
  fs.dir = dir.path();
  fs.fail_fsync = true;
  Status s = WriteFileDurably(path, "new", 0644, &fs);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), ErrorCode::kUnavailable);
  EXPECT_NE(s.message().find("fsync"), std::string::npos) << s.message();
  EXPECT_EQ(testing::ReadFile(path), "old");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  EXPECT_EQ(std::count(fs.calls.begin(), fs.calls.end(), "rename f.tmp f"), 0);
}

TEST(DurableFile, FailedRenameLeavesNoTemporary) {
  testing::TempDir dir;
  const std::string path = dir.File("f");
  RecordingFileSystem fs;
  fs.dir = dir.path();
  fs.fail_rename = true;
  ASSERT_FALSE(WriteFileDurably(path, "new", 0644, &fs).ok());
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(DurableFile, AbandonedWriteRemovesTheTemporary) {
  testing::TempDir dir;
  const std::string path = dir.File("f");
  testing::WriteFile(path, "old");
  {
    DurableFile f(path);
    ASSERT_TRUE(f.Open().ok());
    ASSERT_TRUE(f.Write("half of a new file").ok());
  }  // no Commit: a failed snapshot
  EXPECT_EQ(testing::ReadFile(path), "old");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(DurableFile, LargeWritesAndPatchedHeaders) {
  testing::TempDir dir;
  const std::string path = dir.File("big");
  std::string big(3u << 20, 'x');
  for (std::size_t i = 0; i < big.size(); i += 4093) big[i] = static_cast<char>('a' + i % 26);
  DurableFile f(path);
  ASSERT_TRUE(f.Open().ok());
  ASSERT_TRUE(f.Write("HDR?").ok());
  ASSERT_TRUE(f.Write(big.substr(0, 1000)).ok());
  ASSERT_TRUE(f.Write(big.substr(1000)).ok());
  EXPECT_EQ(f.size(), 4 + big.size());
  ASSERT_TRUE(f.WriteAt(3, "!").ok());
  ASSERT_TRUE(f.Commit().ok());
  EXPECT_EQ(testing::ReadFile(path), "HDR!" + big);
}

TEST(SectionFile, RoundTripsAndRefusesDamage) {
  testing::TempDir dir;
  const std::string path = dir.File("s");
  const std::uint32_t tag = SectionTag("TEST");
  {
    DurableFile f(path);
    ASSERT_TRUE(f.Open().ok());
    SectionWriter w(f);
    w.Raw("MAGIC!!!", 8);
    w.Section(tag, 12, [&] {
      w.ChunkPod(std::uint64_t{42});
      w.ChunkPod(std::uint32_t{7});
    });
    w.Begin(SectionTag("END!"));
    w.End();
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    ASSERT_TRUE(f.Commit().ok());
  }
  auto read = [&](const std::string& bytes) -> Status {
    testing::WriteFile(path, bytes);
    FILE* fp = std::fopen(path.c_str(), "rb");
    SectionReader r(fp, bytes.size(), "test file");
    char magic[8];
    Status s = r.Raw(magic, 8) ? r.Open(tag, "TEST") : r.Fail("short");
    std::uint64_t a = 0;
    std::uint32_t b = 0;
    if (s.ok()) s = r.ChunkPod(&a);
    if (s.ok()) s = r.ChunkPod(&b);
    if (s.ok()) s = r.Close();
    if (s.ok() && (a != 42 || b != 7)) s = Internal("wrong values");
    std::fclose(fp);
    return s;
  };
  const std::string good = testing::ReadFile(path);
  ASSERT_EQ(good.size(), 8u + 16 + 12 + 16);
  EXPECT_TRUE(read(good).ok());
  std::string flipped = good;
  flipped[8 + 16 + 2] ^= 1;
  Status s = read(flipped);
  EXPECT_EQ(s.code(), ErrorCode::kDataLoss);
  EXPECT_NE(s.message().find("checksum mismatch in section TEST"), std::string::npos);
  EXPECT_NE(s.message().find("test file"), std::string::npos);
  EXPECT_EQ(read(good.substr(0, 30)).code(), ErrorCode::kDataLoss);  // runs past the end
}

TEST(SectionFile, JournalRecordsEndAtTheFirstTornOne) {
  std::string journal = FrameRecord("one") + FrameRecord("") + FrameRecord("three");
  const std::size_t whole = journal.size();
  journal += FrameRecord("four").substr(0, 10);  // torn by a crash
  std::size_t at = 0;
  std::string_view payload;
  std::vector<std::string> seen;
  while (NextRecord(journal, &at, &payload, 1 << 20)) seen.emplace_back(payload);
  EXPECT_EQ(seen, (std::vector<std::string>{"one", "", "three"}));
  EXPECT_EQ(at, whole);
  std::string corrupt = FrameRecord("abc");
  corrupt[9] ^= 1;
  at = 0;
  EXPECT_FALSE(NextRecord(corrupt, &at, &payload, 1 << 20));
  EXPECT_EQ(at, 0u);
}

}  // namespace
}  // namespace semcached
