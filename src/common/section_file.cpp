#include "common/section_file.h"

#include <zlib.h>

#include <cstring>

namespace semcached {

std::uint32_t Crc32(std::string_view bytes, std::uint32_t crc) {
  // zlib's crc32 takes a length of uInt: large inputs go in pieces.
  uLong c = crc;
  const auto* p = reinterpret_cast<const Bytef*>(bytes.data());
  std::size_t left = bytes.size();
  while (left > 0) {
    const auto n = static_cast<uInt>(std::min<std::size_t>(left, 1u << 30));
    c = crc32(c, p, n);
    p += n;
    left -= n;
  }
  return static_cast<std::uint32_t>(c);
}

void SectionWriter::Raw(const void* p, std::size_t n) {
  if (!status_.ok()) return;
  status_ = file_.Write(std::string_view(static_cast<const char*>(p), n));
}

void SectionWriter::Begin(std::uint32_t tag) {
  if (!status_.ok()) return;
  if (open_) {
    status_ = Internal("section begun inside another in " + file_.path());
    return;
  }
  header_at_ = file_.size();
  const std::uint64_t length_placeholder = 0;
  const std::uint32_t crc_placeholder = 0;
  Pod(tag);
  Pod(length_placeholder);
  Pod(crc_placeholder);
  open_ = true;
  length_ = 0;
  crc_ = 0;
}

void SectionWriter::Chunk(const void* p, std::size_t n) {
  if (!status_.ok()) return;
  std::string_view bytes(static_cast<const char*>(p), n);
  crc_ = Crc32(bytes, crc_);
  length_ += n;
  status_ = file_.Write(bytes);
}

void SectionWriter::End(std::uint64_t expected_length) {
  if (!status_.ok()) return;
  open_ = false;
  if (expected_length != ~std::uint64_t{0} && expected_length != length_) {
    status_ = Internal("section of " + file_.path() + " announced " +
                       std::to_string(expected_length) + " bytes and wrote " +
                       std::to_string(length_));
    return;
  }
  char header[12];
  std::memcpy(header, &length_, 8);
  std::memcpy(header + 8, &crc_, 4);
  status_ = file_.WriteAt(header_at_ + 4, std::string_view(header, sizeof header));
}

Status SectionReader::Fail(const std::string& why) const {
  return DataLoss(error_prefix_ + ": " + why);
}

Status SectionReader::Open(std::uint32_t tag, const char* name) {
  std::uint32_t got = 0, crc = 0;
  std::uint64_t len = 0;
  if (!Raw(&got, 4) || !Raw(&len, 8) || !Raw(&crc, 4)) {
    return Fail(std::string("truncated before section ") + name);
  }
  if (got != tag) return Fail(std::string("expected section ") + name);
  long pos = std::ftell(f_);
  if (pos < 0 || len > file_size_ - static_cast<std::uint64_t>(pos)) {
    return Fail(std::string("section ") + name + " runs past the end of the file");
  }
  left_ = len;
  expected_crc_ = crc;
  crc_ = 0;
  name_ = name;
  return Status::Ok();
}

Status SectionReader::Chunk(void* p, std::size_t n) {
  if (n > left_) return Fail(std::string("section ") + name_ + " is shorter than its contents");
  if (!Raw(p, n)) return Fail(std::string("truncated in section ") + name_);
  crc_ = Crc32(std::string_view(static_cast<const char*>(p), n), crc_);
  left_ -= n;
  return Status::Ok();
}

Status SectionReader::Close() {
  if (left_ != 0) return Fail(std::string("section ") + name_ + " has unread bytes");
  if (crc_ != expected_crc_) return Fail(std::string("checksum mismatch in section ") + name_);
  return Status::Ok();
}

std::string FrameRecord(std::string_view payload) {
  std::string out(8 + payload.size(), '\0');
  const auto len = static_cast<std::uint32_t>(payload.size());
  const std::uint32_t crc = Crc32(payload);
  std::memcpy(out.data(), &len, 4);
  std::memcpy(out.data() + 4, &crc, 4);
  if (!payload.empty()) std::memcpy(out.data() + 8, payload.data(), payload.size());
  return out;
}

bool NextRecord(std::string_view bytes, std::size_t* offset, std::string_view* payload,
                std::size_t max_payload) {
  const std::size_t at = *offset;
  if (at + 8 > bytes.size()) return false;
  std::uint32_t len, crc;
  std::memcpy(&len, bytes.data() + at, 4);
  std::memcpy(&crc, bytes.data() + at + 4, 4);
  if (len > max_payload || at + 8 + len > bytes.size()) return false;
  std::string_view p = bytes.substr(at + 8, len);
  if (Crc32(p) != crc) return false;
  *payload = p;
  *offset = at + 8 + len;
  return true;
}

}  // namespace semcached
