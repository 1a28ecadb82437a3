#include "vector/row_store.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace semcached::vector {
namespace {
std::size_t Log2(std::size_t v) {
  std::size_t s = 0;
  while ((std::size_t{1} << s) < v) ++s;
  return s;
}
}  // namespace

RowStore::RowStore(std::size_t row_bytes, std::size_t rows_per_segment, std::string file_path)
    : row_bytes_(row_bytes),
      rows_per_segment_(std::size_t{1} << Log2(rows_per_segment)),
      shift_(Log2(rows_per_segment)),
      mask_(rows_per_segment_ - 1),
      segment_bytes_(row_bytes * rows_per_segment_),
      file_path_(std::move(file_path)),
      segments_(new std::atomic<std::uint8_t*>[kMaxSegments]) {
  // Round segments to whole pages so file offsets stay page-aligned.
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  segment_bytes_ = (segment_bytes_ + page - 1) / page * page;
  for (std::size_t i = 0; i < kMaxSegments; ++i) segments_[i].store(nullptr);
}

RowStore::~RowStore() {
  const std::size_t n = segment_count_.load();
  for (std::size_t i = 0; i < n; ++i) munmap(segments_[i].load(), segment_bytes_);
  if (fd_ >= 0) close(fd_);
}

Status RowStore::Reserve(std::size_t rows) {
  if (rows <= capacity_.load(std::memory_order_acquire)) return Status::Ok();
  std::lock_guard<std::mutex> lock(grow_mu_);
  if (!file_path_.empty() && fd_ < 0) {
    fd_ = open(file_path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      return Unavailable("cannot open " + file_path_ + ": " + std::strerror(errno));
    }
  }
  while (capacity_.load() < rows) {
    std::size_t index = segment_count_.load();
    if (index >= kMaxSegments) return Internal("row store is full");
    void* mem;
    if (fd_ >= 0) {
      off_t end = static_cast<off_t>((index + 1) * segment_bytes_);
      if (ftruncate(fd_, end) != 0) {
        return Unavailable("cannot grow " + file_path_ + ": " + std::strerror(errno));
      }
      mem = mmap(nullptr, segment_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_,
                 static_cast<off_t>(index * segment_bytes_));
    } else {
      mem = mmap(nullptr, segment_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
    }
    if (mem == MAP_FAILED) return Unavailable(std::string("mmap failed: ") + std::strerror(errno));
    segments_[index].store(static_cast<std::uint8_t*>(mem), std::memory_order_release);
    segment_count_.store(index + 1);
    capacity_.store((index + 1) * rows_per_segment_, std::memory_order_release);
  }
  return Status::Ok();
}

std::size_t RowStore::anonymous_bytes() const {
  return fd_ >= 0 ? 0 : segment_count_.load() * segment_bytes_;
}

Status RowStore::Sync() const {
  const std::size_t n = segment_count_.load();
  for (std::size_t i = 0; i < n && fd_ >= 0; ++i) {
    if (msync(segments_[i].load(), segment_bytes_, MS_SYNC) != 0) {
      return Unavailable(std::string("msync failed: ") + std::strerror(errno));
    }
  }
  return Status::Ok();
}

}  // namespace semcached::vector
