// Files that must survive a crash: written whole or not at all.
//
// Why: a snapshot, an index file or the admin API's cache list is useless half-written, and a
// rename is only durable once the directory that holds it is synced. Every such file goes
// through DurableFile: written to `path.tmp`, fsynced, renamed over `path`, and the directory
// fsynced, so after a crash `path` is the old file or the whole new one. Writes are buffered
// and retried on EINTR and short writes. The system calls go through a FileSystem, so tests
// can check the order of the calls (the directory fsync above all) and inject failures.
// Must not: know what is in the file, or leave a temporary file behind when it fails.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace semcached {

// The POSIX calls DurableFile makes, behind an interface (the same signatures and errno).
class FileSystem {
 public:
  virtual ~FileSystem() = default;
  virtual int Open(const char* path, int flags, mode_t mode) = 0;
  virtual ssize_t Write(int fd, const void* data, std::size_t size) = 0;
  virtual ssize_t PWrite(int fd, const void* data, std::size_t size, off_t offset) = 0;
  virtual int Fsync(int fd) = 0;
  virtual int Close(int fd) = 0;
  virtual int Rename(const char* from, const char* to) = 0;
  virtual int Unlink(const char* path) = 0;
};
// The operating system's.
FileSystem& SystemFileSystem();

class DurableFile {
 public:
  // `mode` applies to the new file (0600 for files holding secrets).
  explicit DurableFile(std::string path, mode_t mode = 0644, FileSystem* fs = nullptr);
  ~DurableFile();  // without Commit: the temporary file is removed, `path` untouched
  DurableFile(const DurableFile&) = delete;
  DurableFile& operator=(const DurableFile&) = delete;

  Status Open();
  Status Write(std::string_view bytes);
  // Overwrites bytes already written at `offset` (a header patched once its length is known).
  Status WriteAt(std::uint64_t offset, std::string_view bytes);
  // Bytes written so far.
  std::uint64_t size() const { return written_ + buffer_.size(); }
  // fsync, rename over `path`, fsync of the directory.
  Status Commit();

  const std::string& path() const { return path_; }

 private:
  Status Flush();
  Status Fail(const char* what, int err);  // abandons the file
  void Abandon();                          // closes and removes the temporary file
  std::string TmpPath() const { return path_ + ".tmp"; }

  std::string path_;
  mode_t mode_;
  FileSystem& fs_;
  int fd_ = -1;
  std::string buffer_;
  std::uint64_t written_ = 0;
};

// A whole file in one call.
Status WriteFileDurably(const std::string& path, std::string_view bytes, mode_t mode = 0644,
                        FileSystem* fs = nullptr);
// A whole file back: NotFound when it cannot be opened, Unavailable when reading fails.
Result<std::string> ReadWholeFile(const std::string& path);
// fsync of a directory (after creating or renaming a file in it).
Status SyncDirectory(const std::string& dir, FileSystem* fs = nullptr);
// The directory part of a path ("." for a bare name).
std::string DirectoryOf(const std::string& path);

}  // namespace semcached
