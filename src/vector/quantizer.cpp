#include "vector/quantizer.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "vector/kernels.h"
#include "common/enum_names.h"

namespace semcached::vector {
namespace {

constexpr float kMinScale = 1e-12f;

inline std::int8_t ClampCode(float v, std::uint32_t* clipped) {
  float r = std::nearbyint(v);
  if (r > 127.f) {
    if (v > 127.5f) ++*clipped;
    return 127;
  }
  if (r < -127.f) {
    if (v < -127.5f) ++*clipped;
    return -127;
  }
  return static_cast<std::int8_t>(r);
}

struct DimStats {
  float min, max, lo, hi, absmax, absq;
};

std::vector<DimStats> ComputeStats(const std::vector<const float*>& rows, std::size_t dim,
                                   double quantile) {
  std::vector<DimStats> stats(dim);
  std::vector<float> col(rows.size()), abscol(rows.size());
  const std::size_t n = rows.size();
  auto at = [&](std::vector<float>& v, double q) {
    std::size_t k = static_cast<std::size_t>(q * static_cast<double>(n - 1));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    return v[k];
  };
  for (std::size_t d = 0; d < dim; ++d) {
    for (std::size_t i = 0; i < n; ++i) {
      col[i] = rows[i][d];
      abscol[i] = std::fabs(col[i]);
    }
    auto [mn, mx] = std::minmax_element(col.begin(), col.end());
    DimStats s;
    s.min = *mn;
    s.max = *mx;
    s.absmax = std::max(std::fabs(s.min), std::fabs(s.max));
    s.lo = at(col, quantile);
    s.hi = at(col, 1.0 - quantile);
    s.absq = at(abscol, 1.0 - quantile);
    stats[d] = s;
  }
  return stats;
}

Int8Params MakeCandidate(const std::vector<DimStats>& st, Int8Scheme scheme, ClipMethod clip,
                         std::uint32_t version) {
  Int8Params p;
  p.version = version;
  p.scheme = scheme;
  p.clip = clip;
  p.offset.assign(st.size(), 0.f);
  p.scale.assign(st.size(), 1.f);
  for (std::size_t d = 0; d < st.size(); ++d) {
    const DimStats& s = st[d];
    if (scheme == Int8Scheme::kPerDimSymmetric) {
      float range = clip == ClipMethod::kMinMax ? s.absmax : s.absq;
      p.scale[d] = std::max(range / 127.f, kMinScale);
    } else {
      float lo = clip == ClipMethod::kMinMax ? s.min : s.lo;
      float hi = clip == ClipMethod::kMinMax ? s.max : s.hi;
      p.offset[d] = 0.5f * (lo + hi);
      p.scale[d] = std::max((hi - lo) / 254.f, kMinScale);
    }
  }
  return p;
}

void MeasureError(Int8Params* p, const std::vector<const float*>& rows, std::size_t dim,
                  std::size_t pairs, std::uint64_t seed) {
  const KernelTable& k = Kernels();
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::size_t> pick(0, rows.size() - 1);
  std::vector<std::int8_t> codes(dim);
  QueryCode qc;
  double err = 0, mag = 0;
  std::uint64_t clipped = 0;
  for (std::size_t t = 0; t < pairs; ++t) {
    const float* x = rows[pick(rng)];
    const float* q = rows[pick(rng)];
    CodeMeta m = Encode(*p, x, codes.data());
    clipped += m.clipped;
    EncodeQuery(*p, q, &qc);
    float approx = ApproxDotFromKernel(qc, m, k.dot_u8i8(qc.biased.data(), codes.data(), dim));
    float exact = k.dot_f32(x, q, dim);
    err += std::fabs(static_cast<double>(approx) - exact);
    mag += std::fabs(static_cast<double>(exact));
  }
  p->sample_dot_error = mag > 0 ? err / mag : err;
  p->sample_clip_rate = static_cast<double>(clipped) / static_cast<double>(pairs * dim);
}

std::vector<const float*> SampleRows(const float* data, std::size_t n, std::size_t dim,
                                     std::size_t max_sample) {
  std::vector<const float*> rows;
  std::size_t take = std::min(n, max_sample);
  rows.reserve(take);
  for (std::size_t i = 0; i < take; ++i) rows.push_back(data + (i * n / take) * dim);
  return rows;
}

}  // namespace

void MeasureDotError(Int8Params* params, const float* data, std::size_t n,
                     const CalibrationOptions& options) {
  if (n == 0) return;
  auto rows = SampleRows(data, n, params->dim(), options.max_sample);
  MeasureError(params, rows, params->dim(), options.error_pairs, options.seed);
}

const char* Int8SchemeName(Int8Scheme s) {
  static constexpr EnumName<Int8Scheme> kNames[] = {
      {Int8Scheme::kPerVector, "per-vector"},
      {Int8Scheme::kPerDimSymmetric, "per-dim-symmetric"},
      {Int8Scheme::kPerDimAsymmetric, "per-dim-asymmetric"}};
  return NameOf(kNames, s);
}

bool AllFinite(const float* x, std::size_t dim) {
  for (std::size_t i = 0; i < dim; ++i) {
    if (!std::isfinite(x[i])) return false;
  }
  return true;
}

bool NormalizeInPlace(float* x, std::size_t dim) {
  double s = 0;
  for (std::size_t i = 0; i < dim; ++i) s += static_cast<double>(x[i]) * x[i];
  if (!(s > 0) || !std::isfinite(s)) return false;
  float inv = static_cast<float>(1.0 / std::sqrt(s));
  for (std::size_t i = 0; i < dim; ++i) x[i] *= inv;
  return true;
}

Int8Params PerVectorParams(std::size_t dim) {
  Int8Params p;
  p.scheme = Int8Scheme::kPerVector;
  p.offset.assign(dim, 0.f);
  p.scale.assign(dim, 1.f);
  return p;
}

Result<Int8Params> Calibrate(const float* data, std::size_t n, std::size_t dim,
                             std::uint32_t version, const CalibrationOptions& options) {
  if (n == 0 || dim == 0) return InvalidArgument("calibration needs at least one vector");
  auto rows = SampleRows(data, n, dim, options.max_sample);
  for (const float* row : rows) {
    if (!AllFinite(row, dim)) return InvalidArgument("calibration sample has a non-finite value");
  }
  auto stats = ComputeStats(rows, dim, options.quantile);

  std::vector<Int8Params> candidates;
  candidates.push_back(PerVectorParams(dim));
  candidates.back().version = version;
  for (Int8Scheme s : {Int8Scheme::kPerDimSymmetric, Int8Scheme::kPerDimAsymmetric}) {
    for (ClipMethod c : {ClipMethod::kMinMax, ClipMethod::kQuantile}) {
      candidates.push_back(MakeCandidate(stats, s, c, version));
    }
  }
  for (auto& c : candidates) MeasureError(&c, rows, dim, options.error_pairs, options.seed);
  auto best = std::min_element(candidates.begin(), candidates.end(),
                               [](const Int8Params& a, const Int8Params& b) {
                                 return a.sample_dot_error < b.sample_dot_error;
                               });
  return std::move(*best);
}

CodeMeta Encode(const Int8Params& p, const float* x, std::int8_t* codes) {
  CodeMeta m;
  m.version = p.version;
  const std::size_t dim = p.dim();
  if (p.scheme == Int8Scheme::kPerVector) {
    float maxabs = 0;
    for (std::size_t d = 0; d < dim; ++d) maxabs = std::max(maxabs, std::fabs(x[d]));
    m.alpha = maxabs > 0 ? maxabs / 127.f : 1.f;
    float inv = maxabs > 0 ? 127.f / maxabs : 0.f;
    for (std::size_t d = 0; d < dim; ++d) codes[d] = ClampCode(x[d] * inv, &m.clipped);
  } else {
    m.alpha = 1.f;
    for (std::size_t d = 0; d < dim; ++d) {
      codes[d] = ClampCode((x[d] - p.offset[d]) / p.scale[d], &m.clipped);
    }
  }
  std::int32_t sum = 0;
  float norm2 = 0;
  for (std::size_t d = 0; d < dim; ++d) {
    sum += codes[d];
    float v = p.offset[d] + p.scale[d] * m.alpha * static_cast<float>(codes[d]);
    norm2 += v * v;
  }
  m.sum = sum;
  m.norm2 = norm2;
  return m;
}

void Decode(const Int8Params& p, const std::int8_t* codes, const CodeMeta& meta, float* out) {
  for (std::size_t d = 0; d < p.dim(); ++d) {
    out[d] = p.offset[d] + p.scale[d] * meta.alpha * static_cast<float>(codes[d]);
  }
}

void EncodeQuery(const Int8Params& p, const float* q, QueryCode* out) {
  const std::size_t dim = p.dim();
  out->version = p.version;
  out->biased.resize(dim);
  float maxabs = 0, offset_dot = 0, norm2 = 0;
  for (std::size_t d = 0; d < dim; ++d) {
    maxabs = std::max(maxabs, std::fabs(q[d] * p.scale[d]));
    offset_dot += q[d] * p.offset[d];
    norm2 += q[d] * q[d];
  }
  out->offset_dot = offset_dot;
  out->norm2 = norm2;
  out->w_scale = maxabs / 127.f;
  float inv = maxabs > 0 ? 127.f / maxabs : 0.f;
  for (std::size_t d = 0; d < dim; ++d) {
    float r = std::nearbyint(q[d] * p.scale[d] * inv);
    r = std::clamp(r, -127.f, 127.f);
    out->biased[d] = static_cast<std::uint8_t>(static_cast<int>(r) + 128);
  }
  out->wide.resize(dim);
  out->wide_scale = maxabs / 8191.f;
  float winv = maxabs > 0 ? 8191.f / maxabs : 0.f;
  for (std::size_t d = 0; d < dim; ++d) {
    float r = std::clamp(std::nearbyint(q[d] * p.scale[d] * winv), -8191.f, 8191.f);
    out->wide[d] = static_cast<std::int16_t>(r);
  }
}

std::size_t BinaryWords(std::size_t dim) { return (dim + 63) / 64; }

void EncodeBinary(const Int8Params& p, const float* x, std::uint64_t* bits) {
  const std::size_t words = BinaryWords(p.dim());
  std::fill(bits, bits + words, 0);
  for (std::size_t d = 0; d < p.dim(); ++d) {
    if (x[d] > p.offset[d]) bits[d / 64] |= std::uint64_t{1} << (d % 64);
  }
}

}  // namespace semcached::vector
