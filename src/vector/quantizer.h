// int8 and binary quantization of float32 vectors.
//
// One code form serves every int8 scheme: a vector x is stored as int8 codes c with
//   x[d] ~= offset[d] + scale[d] * alpha * c[d]
// where offset and scale are per dimension (learned by calibration) and alpha per vector.
//   - Redis Q8 (per-vector symmetric): offset 0, scale 1, alpha = max|x| / 127, so codes move
//     between this engine and Redis vector sets unchanged.
//   - calibrated per-dimension codes: alpha 1, offset/scale from a sample's ranges (min-max
//     or quantile-clipped), symmetric (offset 0) or asymmetric, whichever measures better.
// A query is turned into a QueryCode once; its dot product with a stored code is then one
// integer kernel call plus a few multiplies (see ApproxDot). Binary codes are the signs of
// x - offset, compared by Hamming distance.
//
// Nothing here allocates per distance or knows about graphs, files or the network.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace semcached::vector {

enum class Int8Scheme : std::uint8_t {
  kPerVector = 0,        // Redis Q8
  kPerDimSymmetric = 1,  // offset 0, scale per dimension
  kPerDimAsymmetric = 2, // offset and scale per dimension
};
const char* Int8SchemeName(Int8Scheme s);

enum class ClipMethod : std::uint8_t { kMinMax = 0, kQuantile = 1 };

struct Int8Params {
  std::uint32_t version = 0;  // increases with every calibration
  Int8Scheme scheme = Int8Scheme::kPerVector;
  ClipMethod clip = ClipMethod::kMinMax;
  std::vector<float> offset;  // per dimension
  std::vector<float> scale;   // per dimension
  // Measured on the calibration sample: mean relative error of dot products between sample
  // vectors, and the share of components that fell outside the learned range.
  double sample_dot_error = 0;
  double sample_clip_rate = 0;

  std::size_t dim() const { return offset.size(); }
};

// The per-vector scheme (Redis Q8) for a dimension: needs no data.
Int8Params PerVectorParams(std::size_t dim);

struct CalibrationOptions {
  double quantile = 0.001;        // clipped from each tail by the quantile method
  std::size_t max_sample = 20000; // vectors used at most (taken evenly from the input)
  std::size_t error_pairs = 2000; // pairs used to measure dot-product error
  std::uint64_t seed = 1;
};

// Learns per-dimension params from n row-major vectors, trying symmetric and asymmetric
// codes with min-max and quantile ranges and keeping the one with the least dot-product
// error on the sample. Fails on n == 0 or non-finite input.
Result<Int8Params> Calibrate(const float* data, std::size_t n, std::size_t dim,
                             std::uint32_t version, const CalibrationOptions& options = {});

// Measures params->sample_dot_error and sample_clip_rate on n row-major vectors: the mean
// absolute error of approximate dot products (stored code vs quantized query) over random
// pairs, relative to the mean absolute exact dot product. This is the figure calibration
// minimizes, because it is what ranks search results; reconstruction error of dimensions
// that carry little of the dot product does not matter.
void MeasureDotError(Int8Params* params, const float* data, std::size_t n,
                     const CalibrationOptions& options = {});

// What each stored code carries beside its int8 components.
struct CodeMeta {
  float alpha = 1;      // per-vector scale
  std::int32_t sum = 0; // sum of the codes, for the unsigned-query kernel
  float norm2 = 0;      // squared norm of the decoded vector (for L2)
  std::uint32_t version = 0;
  std::uint32_t clipped = 0;  // components outside the calibrated range (for drift)
};

// Encodes one vector; codes must hold dim bytes. Components are clamped to [-127, 127].
CodeMeta Encode(const Int8Params& p, const float* x, std::int8_t* codes);

// Reconstructs a vector from its codes.
void Decode(const Int8Params& p, const std::int8_t* codes, const CodeMeta& meta, float* out);

// A query prepared for ApproxDot against codes made with the same params.
struct QueryCode {
  std::vector<std::uint8_t> biased;  // round(w * 127 / max|w|) + 128, w = q * scale
  float w_scale = 0;                 // max|w| / 127
  float offset_dot = 0;              // sum q[d] * offset[d]
  float norm2 = 0;                   // |q|^2
  std::uint32_t version = 0;
  // The same query at 14 bits for the int16 x int8 kernel: round(w * 8191 / max|w|).
  std::vector<std::int16_t> wide;
  float wide_scale = 0;              // max|w| / 8191
};
void EncodeQuery(const Int8Params& p, const float* q, QueryCode* out);

// dot(q, decoded x) from the integer kernel's result dot_u8i8(query.biased, codes).
inline float ApproxDotFromKernel(const QueryCode& q, const CodeMeta& m, std::int32_t kernel_dot) {
  return q.offset_dot + m.alpha * q.w_scale * static_cast<float>(kernel_dot - 128 * m.sum);
}

// dot(q, decoded x) from dot_i16i8(query.wide, codes).
inline float ApproxDotFromWideKernel(const QueryCode& q, const CodeMeta& m, std::int32_t kernel_dot) {
  return q.offset_dot + m.alpha * q.wide_scale * static_cast<float>(kernel_dot);
}

// Binary sign codes: bit d is set when x[d] > offset[d] (offset all 0 for per-vector).
std::size_t BinaryWords(std::size_t dim);
void EncodeBinary(const Int8Params& p, const float* x, std::uint64_t* bits);

// Scales x to unit length in place; false when x is zero or not finite.
bool NormalizeInPlace(float* x, std::size_t dim);

// True when every component is finite.
bool AllFinite(const float* x, std::size_t dim);

}  // namespace semcached::vector
