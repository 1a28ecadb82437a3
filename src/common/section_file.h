// Checksummed sections: the framing of every binary file the project writes (the HNSW index
// file, an embedded cache's snapshot of entries).
//
// Why: a file damaged by a disk, a copy cut short or a bug must be refused with a message
// before any of it is used, never crash a reader later. A file is a magic and a version (the
// format's own), then sections:
//   u32 tag | u64 payload bytes | u32 CRC-32 of the payload | payload
// all integers little-endian (x86-64 only), ending with a section of its own choosing. A
// writer streams each payload and patches its length and CRC when the section ends, so no
// section is held whole in memory; a reader bounds every read by the section's declared
// length and the file's size, and checks the CRC when the section is closed.
// Also here: the record framing of append-only journals ([u32 length][u32 CRC-32][payload]).
// Must not: know what is in a section.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "common/durable_file.h"
#include "common/status.h"

namespace semcached {

constexpr std::uint32_t SectionTag(const char (&s)[5]) {
  return std::uint32_t(std::uint8_t(s[0])) | std::uint32_t(std::uint8_t(s[1])) << 8 |
         std::uint32_t(std::uint8_t(s[2])) << 16 | std::uint32_t(std::uint8_t(s[3])) << 24;
}

std::uint32_t Crc32(std::string_view bytes, std::uint32_t crc = 0);

class SectionWriter {
 public:
  explicit SectionWriter(DurableFile& file) : file_(file) {}
  // Bytes outside any section (the magic and version).
  void Raw(const void* p, std::size_t n);
  template <typename T>
  void Pod(const T& v) {
    Raw(&v, sizeof(T));
  }
  void Begin(std::uint32_t tag);
  void Chunk(const void* p, std::size_t n);
  template <typename T>
  void ChunkPod(const T& v) {
    Chunk(&v, sizeof(T));
  }
  // Ends the section; with `expected_length`, a payload of another length is an error.
  void End(std::uint64_t expected_length = ~std::uint64_t{0});
  // A whole section whose payload `fill` writes with Chunk().
  template <typename Fill>
  void Section(std::uint32_t tag, std::uint64_t length, Fill&& fill) {
    Begin(tag);
    fill();
    End(length);
  }
  // The first error of any call, or Ok.
  const Status& status() const { return status_; }
  bool ok() const { return status_.ok(); }

 private:
  DurableFile& file_;
  Status status_;
  std::uint64_t header_at_ = 0, length_ = 0;
  std::uint32_t crc_ = 0;
  bool open_ = false;
};

// Reads a file of sections from a FILE* positioned at its start. Every error is kDataLoss and
// starts with `error_prefix` ("index file /x/y.index is damaged or not an index").
class SectionReader {
 public:
  SectionReader(FILE* f, std::uint64_t file_size, std::string error_prefix)
      : f_(f), file_size_(file_size), error_prefix_(std::move(error_prefix)) {}

  Status Fail(const std::string& why) const;
  bool Raw(void* p, std::size_t n) { return std::fread(p, 1, n, f_) == n; }
  // Opens the next section; it must carry `tag`.
  Status Open(std::uint32_t tag, const char* name);
  std::uint64_t left() const { return left_; }
  Status Chunk(void* p, std::size_t n);
  template <typename T>
  Status ChunkPod(T* v) {
    return Chunk(v, sizeof(T));
  }
  // Every byte read and the CRC right.
  Status Close();

 private:
  FILE* f_;
  std::uint64_t file_size_;
  std::string error_prefix_;
  std::uint64_t left_ = 0;
  std::uint32_t expected_crc_ = 0, crc_ = 0;
  const char* name_ = "";
};

// Journal records: `payload` framed for appending.
std::string FrameRecord(std::string_view payload);
// The payload of the record at `*offset` of `bytes`, advancing `*offset` past it; false for a
// torn or corrupt record (or the end), leaving `*offset` where the last whole record ended.
bool NextRecord(std::string_view bytes, std::size_t* offset, std::string_view* payload,
                std::size_t max_payload);

}  // namespace semcached
