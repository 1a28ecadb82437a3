#include "common/durable_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace semcached {

namespace {

constexpr std::size_t kBufferBytes = 1u << 20;

class PosixFileSystem final : public FileSystem {
 public:
  int Open(const char* path, int flags, mode_t mode) override { return ::open(path, flags, mode); }
  ssize_t Write(int fd, const void* data, std::size_t size) override {
    return ::write(fd, data, size);
  }
  ssize_t PWrite(int fd, const void* data, std::size_t size, off_t offset) override {
    return ::pwrite(fd, data, size, offset);
  }
  int Fsync(int fd) override { return ::fsync(fd); }
  int Close(int fd) override { return ::close(fd); }
  int Rename(const char* from, const char* to) override { return ::rename(from, to); }
  int Unlink(const char* path) override { return ::unlink(path); }
};

// Retries a call interrupted by a signal.
template <typename F>
auto RetryOnEintr(F&& call) {
  for (;;) {
    auto rc = call();
    if (rc >= 0 || errno != EINTR) return rc;
  }
}

Status WriteAll(FileSystem& fs, int fd, const char* data, std::size_t size,
                const std::string& path) {
  std::size_t off = 0;
  while (off < size) {
    ssize_t n = RetryOnEintr([&] { return fs.Write(fd, data + off, size - off); });
    if (n <= 0) {
      return Unavailable("cannot write " + path + ": " + std::strerror(n == 0 ? EIO : errno));
    }
    off += static_cast<std::size_t>(n);
  }
  return Status::Ok();
}

}  // namespace

FileSystem& SystemFileSystem() {
  static PosixFileSystem fs;
  return fs;
}

std::string DirectoryOf(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status SyncDirectory(const std::string& dir, FileSystem* fs_or_null) {
  FileSystem& fs = fs_or_null ? *fs_or_null : SystemFileSystem();
  int fd =
      RetryOnEintr([&] { return fs.Open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0); });
  if (fd < 0) return Unavailable("cannot open directory " + dir + ": " + std::strerror(errno));
  int rc = RetryOnEintr([&] { return fs.Fsync(fd); });
  const int err = errno;
  fs.Close(fd);
  if (rc != 0) return Unavailable("fsync of directory " + dir + ": " + std::strerror(err));
  return Status::Ok();
}

DurableFile::DurableFile(std::string path, mode_t mode, FileSystem* fs)
    : path_(std::move(path)), mode_(mode), fs_(fs ? *fs : SystemFileSystem()) {}

DurableFile::~DurableFile() { Abandon(); }

void DurableFile::Abandon() {
  if (fd_ >= 0) {
    fs_.Close(fd_);
    fs_.Unlink(TmpPath().c_str());
    fd_ = -1;
  }
}

Status DurableFile::Fail(const char* what, int err) {
  Status s = Unavailable(std::string(what) + " " + TmpPath() + ": " + std::strerror(err));
  Abandon();
  return s;
}

Status DurableFile::Open() {
  const std::string tmp = TmpPath();
  fd_ = RetryOnEintr(
      [&] { return fs_.Open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode_); });
  if (fd_ < 0) return Unavailable("cannot write " + tmp + ": " + std::strerror(errno));
  buffer_.reserve(kBufferBytes);
  return Status::Ok();
}

Status DurableFile::Flush() {
  if (buffer_.empty()) return Status::Ok();
  if (Status s = WriteAll(fs_, fd_, buffer_.data(), buffer_.size(), TmpPath()); !s.ok()) {
    Abandon();
    return s;
  }
  written_ += buffer_.size();
  buffer_.clear();
  return Status::Ok();
}

Status DurableFile::Write(std::string_view bytes) {
  if (fd_ < 0) return Internal("DurableFile " + path_ + " is not open");
  if (buffer_.size() + bytes.size() > kBufferBytes) {
    if (Status s = Flush(); !s.ok()) return s;
    if (bytes.size() >= kBufferBytes) {
      if (Status s = WriteAll(fs_, fd_, bytes.data(), bytes.size(), TmpPath()); !s.ok()) {
        Abandon();
        return s;
      }
      written_ += bytes.size();
      return Status::Ok();
    }
  }
  buffer_.append(bytes);
  return Status::Ok();
}

Status DurableFile::WriteAt(std::uint64_t offset, std::string_view bytes) {
  if (fd_ < 0) return Internal("DurableFile " + path_ + " is not open");
  if (offset + bytes.size() > size()) return Internal("WriteAt past the end of " + path_);
  if (Status s = Flush(); !s.ok()) return s;
  std::size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = RetryOnEintr([&] {
      return fs_.PWrite(fd_, bytes.data() + off, bytes.size() - off,
                        static_cast<off_t>(offset + off));
    });
    if (n <= 0) return Fail("cannot write", n == 0 ? EIO : errno);
    off += static_cast<std::size_t>(n);
  }
  return Status::Ok();
}

Status DurableFile::Commit() {
  if (fd_ < 0) return Internal("DurableFile " + path_ + " is not open");
  if (Status s = Flush(); !s.ok()) return s;
  if (RetryOnEintr([&] { return fs_.Fsync(fd_); }) != 0) return Fail("fsync", errno);
  const int fd = fd_;
  fd_ = -1;
  if (fs_.Close(fd) != 0 && errno != EINTR) {
    const int err = errno;
    fs_.Unlink(TmpPath().c_str());
    return Unavailable("close " + TmpPath() + ": " + std::strerror(err));
  }
  if (fs_.Rename(TmpPath().c_str(), path_.c_str()) != 0) {
    const int err = errno;
    fs_.Unlink(TmpPath().c_str());
    return Unavailable("rename " + TmpPath() + " to " + path_ + ": " + std::strerror(err));
  }
  return SyncDirectory(DirectoryOf(path_), &fs_);
}

Status WriteFileDurably(const std::string& path, std::string_view bytes, mode_t mode,
                        FileSystem* fs) {
  DurableFile f(path, mode, fs);
  if (Status s = f.Open(); !s.ok()) return s;
  if (Status s = f.Write(bytes); !s.ok()) return s;
  return f.Commit();
}

Result<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot open " + path);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Unavailable("cannot read " + path);
  return text.str();
}

}  // namespace semcached
