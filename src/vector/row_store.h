// Fixed-size rows in segments whose addresses never change.
//
// The index keeps codes, links and float originals in RowStores. Rows are appended, never
// moved, so a search may read row i while another thread appends row j: growth allocates a
// new segment and publishes its pointer atomically; it never reallocates what exists.
// Segments come from anonymous memory, or from a file (for float originals that should
// live on disk and be paged in on demand, keeping RAM for codes and graph).
//
// Synchronization of the row *contents* is the caller's business.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"

namespace semcached::vector {

class RowStore {
 public:
  // rows_per_segment must be a power of two. file_path empty: anonymous memory.
  RowStore(std::size_t row_bytes, std::size_t rows_per_segment, std::string file_path = "");
  ~RowStore();
  RowStore(const RowStore&) = delete;
  RowStore& operator=(const RowStore&) = delete;

  // Makes rows [0, rows) addressable. Thread-safe; rows never move afterwards.
  Status Reserve(std::size_t rows);

  // Always inlined: a graph walk calls it for every neighbour it looks at, and the compiler
  // otherwise leaves it a call in the walk's large loop.
  [[gnu::always_inline]] std::uint8_t* Row(std::size_t i) const {
    return segments_[i >> shift_].load(std::memory_order_acquire) + (i & mask_) * row_bytes_;
  }
  template <typename T>
  T* RowAs(std::size_t i) const {
    return reinterpret_cast<T*>(Row(i));
  }

  std::size_t row_bytes() const { return row_bytes_; }
  std::size_t capacity() const { return capacity_.load(std::memory_order_acquire); }
  bool file_backed() const { return !file_path_.empty(); }
  // Bytes of anonymous memory held (file-backed segments count zero: the kernel can drop
  // their pages and read them back).
  std::size_t anonymous_bytes() const;
  // Flushes file-backed segments to disk.
  Status Sync() const;

 private:
  static constexpr std::size_t kMaxSegments = 1 << 16;

  std::size_t row_bytes_;
  std::size_t rows_per_segment_;
  std::size_t shift_;
  std::size_t mask_;
  std::size_t segment_bytes_;
  std::string file_path_;
  int fd_ = -1;
  std::unique_ptr<std::atomic<std::uint8_t*>[]> segments_;
  std::atomic<std::size_t> segment_count_{0};
  std::atomic<std::size_t> capacity_{0};
  std::mutex grow_mu_;
};

}  // namespace semcached::vector
