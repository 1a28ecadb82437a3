#include "embed/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

namespace semcached::embed {
namespace {

struct DTypeInfo {
  const char* name;
  TensorDType dtype;
  std::size_t bytes;
};

constexpr DTypeInfo kDTypes[] = {
    {"F64", TensorDType::kF64, 8},   {"F32", TensorDType::kF32, 4}, {"F16", TensorDType::kF16, 2},
    {"BF16", TensorDType::kBF16, 2}, {"I64", TensorDType::kI64, 8}, {"I32", TensorDType::kI32, 4},
    {"I16", TensorDType::kI16, 2},   {"I8", TensorDType::kI8, 1},   {"U8", TensorDType::kU8, 1},
    {"BOOL", TensorDType::kBool, 1},
};

const DTypeInfo* InfoOf(TensorDType dtype) {
  for (const auto& d : kDTypes)
    if (d.dtype == dtype) return &d;
  return nullptr;
}

// Headers of real models are a few kilobytes; a larger claim is a damaged length field.
constexpr std::uint64_t kMaxHeaderBytes = 100u << 20;

}  // namespace

const char* TensorDTypeName(TensorDType dtype) { return InfoOf(dtype)->name; }
std::size_t TensorDTypeBytes(TensorDType dtype) { return InfoOf(dtype)->bytes; }

std::uint64_t TensorView::elements() const {
  std::uint64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

const TensorView* SafetensorsFile::Find(std::string_view name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

Result<SafetensorsFile> SafetensorsFile::Parse(std::string_view bytes, std::string what) {
  auto bad = [&](const std::string& why) { return DataLoss(what + ": " + why); };
  if (bytes.size() < 8) return bad("shorter than the 8-byte header length");
  std::uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i)
    header_len = (header_len << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  if (header_len > kMaxHeaderBytes || header_len > bytes.size() - 8) {
    return bad("header length " + std::to_string(header_len) + " exceeds the file (" +
               std::to_string(bytes.size()) + " bytes)");
  }
  const std::string_view header = bytes.substr(8, header_len);
  const std::string_view data = bytes.substr(8 + header_len);
  auto json = nlohmann::json::parse(header, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) return bad("header is not a JSON object");

  SafetensorsFile file;
  for (auto& [name, t] : json.items()) {
    if (name == "__metadata__") continue;
    auto bad_tensor = [&](const std::string& why) { return bad("tensor '" + name + "': " + why); };
    if (!t.is_object()) return bad_tensor("not an object");
    TensorView view;
    view.name = name;
    const auto dtype = t.find("dtype");
    if (dtype == t.end() || !dtype->is_string()) return bad_tensor("no dtype");
    const DTypeInfo* info = nullptr;
    for (const auto& d : kDTypes)
      if (*dtype == d.name) info = &d;
    if (info == nullptr) return bad_tensor("unknown dtype " + dtype->dump());
    view.dtype = info->dtype;

    const auto shape = t.find("shape");
    if (shape == t.end() || !shape->is_array()) return bad_tensor("no shape");
    std::uint64_t bytes_needed = info->bytes;
    for (const auto& d : *shape) {
      if (!d.is_number_unsigned()) return bad_tensor("shape " + shape->dump() + " is not sizes");
      const auto dim = d.get<std::uint64_t>();
      if (dim != 0 && bytes_needed > std::numeric_limits<std::uint64_t>::max() / dim)
        return bad_tensor("shape " + shape->dump() + " overflows");
      bytes_needed *= dim;
      view.shape.push_back(dim);
    }

    const auto offsets = t.find("data_offsets");
    if (offsets == t.end() || !offsets->is_array() || offsets->size() != 2 ||
        !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned())
      return bad_tensor("data_offsets is not [begin, end]");
    const auto begin = (*offsets)[0].get<std::uint64_t>();
    const auto end = (*offsets)[1].get<std::uint64_t>();
    if (begin > end || end > data.size()) {
      return bad_tensor("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                        "] fall outside the " + std::to_string(data.size()) + " data bytes");
    }
    if (end - begin != bytes_needed) {
      return bad_tensor("shape " + shape->dump() + " of " + info->name + " needs " +
                        std::to_string(bytes_needed) + " bytes, data_offsets hold " +
                        std::to_string(end - begin));
    }
    view.data = data.substr(begin, end - begin);
    file.tensors_.push_back(std::move(view));
  }
  // Tensors may not share bytes: overlap is how a forged header aliases one into another.
  std::vector<std::pair<const char*, const char*>> ranges;
  for (const auto& t : file.tensors_)
    if (!t.data.empty()) ranges.emplace_back(t.data.data(), t.data.data() + t.data.size());
  std::sort(ranges.begin(), ranges.end());
  for (std::size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second) return bad("two tensors overlap");
  return file;
}

}  // namespace semcached::embed
