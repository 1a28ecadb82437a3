// A reader of the safetensors format (a JSON header, then raw little-endian tensors), for
// the static embedders' weights.
//
// Model files come from the network and the disk: Parse checks every tensor's dtype, shape
// and byte range against the file before any of it is read, and refuses a file whose header
// lies with a DataLoss naming the tensor and what is wrong. It reads; it never converts
// types or owns the bytes (views point into the caller's buffer).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace semcached::embed {

enum class TensorDType { kF64, kF32, kF16, kBF16, kI64, kI32, kI16, kI8, kU8, kBool };

const char* TensorDTypeName(TensorDType dtype);
std::size_t TensorDTypeBytes(TensorDType dtype);

struct TensorView {
  std::string name;
  TensorDType dtype = TensorDType::kF32;
  std::vector<std::uint64_t> shape;
  std::string_view data;  // exactly the product of shape times the element size

  std::uint64_t elements() const;
};

class SafetensorsFile {
 public:
  // `bytes` must outlive the result. `what` names the file in errors.
  static Result<SafetensorsFile> Parse(std::string_view bytes, std::string what);

  const std::vector<TensorView>& tensors() const { return tensors_; }
  const TensorView* Find(std::string_view name) const;

 private:
  std::vector<TensorView> tensors_;
};

}  // namespace semcached::embed
