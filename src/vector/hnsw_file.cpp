// The HNSW index file: HnswIndex::Save and HnswIndex::Load.
//
//
// File layout (all integers little-endian):
//   magic "SCHNSW\r\n" | u32 format version | sections... | end section
//   section: u32 tag | u64 payload bytes | u32 CRC-32 of the payload | payload
// Sections, in order: OPTS (options), PARM (int8 params, if calibrated), NODE (records),
// LNK0 (level-0 links), UPPR (upper links of nodes above level 0), CODE, BITS (optional),
// ORIG (float32 originals), END. Every section is checked before anything in it is used,
// and every id and count in it is checked against the others, so a damaged file is refused
// with a message instead of crashing a search later.
// Sections are framed by common/section_file.h and the file is written by common/durable_file.h
// (temporary file, fsync, rename, directory fsync).
// Must not: trust any count or id in a file before checking it against the others.

#include <cerrno>
#include <cmath>
#include <cstring>

#include "common/durable_file.h"
#include "common/section_file.h"
#include "vector/hnsw_graph.h"
#include "vector/hnsw_maintenance.h"

namespace semcached::vector {
namespace {

constexpr char kMagic[8] = {'S', 'C', 'H', 'N', 'S', 'W', '\r', '\n'};
constexpr std::uint32_t kFormatVersion = 1;
constexpr std::uint32_t kOpts = SectionTag("OPTS"), kParm = SectionTag("PARM"),
                        kNode = SectionTag("NODE"), kLnk0 = SectionTag("LNK0"),
                        kUppr = SectionTag("UPPR"), kCode = SectionTag("CODE"),
                        kBits = SectionTag("BITS"), kOrig = SectionTag("ORIG"),
                        kEnd = SectionTag("END!");
constexpr int kMaxLevel = 64;

struct SavedNode {
  std::uint64_t label;
  std::int32_t level;
  std::uint32_t flags;
};

struct SavedOptions {
  std::uint32_t dim, metric, M, ef_construction, calibration_threshold, calibrate, binary_codes,
      drift_window;
  double drift_clip_rate, compact_ratio;
  std::uint64_t seed, nodes, live_at_calibration;
  std::uint32_t entry;
  std::int32_t max_level;
};

}  // namespace

Status HnswIndex::Save(const std::string& path) const {
  std::unique_lock<std::shared_mutex> writes(state_->write_gate);
  std::shared_lock<std::shared_mutex> swap(state_->swap_mu);
  const Impl& impl = *state_->impl;
  std::shared_lock<std::shared_mutex> state(impl.state_mu);

  DurableFile file(path);
  if (Status s = file.Open(); !s.ok()) return s;
  SectionWriter w(file);
  const std::uint32_t n = impl.ScanLimit();
  const std::size_t dim = impl.dim;

  w.Raw(kMagic, sizeof(kMagic));
  w.Pod(kFormatVersion);
  SavedOptions so{};
  so.dim = static_cast<std::uint32_t>(dim);
  so.metric = static_cast<std::uint32_t>(impl.opt.metric);
  so.M = static_cast<std::uint32_t>(impl.M);
  so.ef_construction = static_cast<std::uint32_t>(impl.opt.ef_construction);
  so.calibration_threshold = static_cast<std::uint32_t>(impl.opt.calibration_threshold);
  so.calibrate = impl.opt.calibrate;
  so.binary_codes = impl.opt.binary_codes;
  so.drift_window = static_cast<std::uint32_t>(std::min<std::size_t>(impl.opt.drift_window, 0xFFFFFFFFu));
  so.drift_clip_rate = impl.opt.drift_clip_rate;
  so.compact_ratio = impl.opt.compact_ratio;
  so.seed = impl.opt.seed;
  so.nodes = n;
  so.live_at_calibration = impl.live_at_calibration;
  so.entry = impl.entry.load();
  so.max_level = impl.max_level.load();
  w.Section(kOpts, sizeof(so), [&] { w.ChunkPod(so); });

  const CodeSpace* space = impl.space.get();
  if (space != nullptr) {
    const Int8Params& p = space->params;
    std::uint64_t len = 4 + 1 + 1 + 8 + 8 + 2 * dim * 4;
    w.Section(kParm, len, [&] {
      w.ChunkPod(p.version);
      w.ChunkPod(static_cast<std::uint8_t>(p.scheme));
      w.ChunkPod(static_cast<std::uint8_t>(p.clip));
      w.ChunkPod(p.sample_dot_error);
      w.ChunkPod(p.sample_clip_rate);
      w.Chunk(p.offset.data(), dim * 4);
      w.Chunk(p.scale.data(), dim * 4);
    });
  }
  w.Section(kNode, std::uint64_t{n} * sizeof(SavedNode), [&] {
    for (std::uint32_t id = 0; id < n; ++id) {
      const NodeRecord* r = impl.Node(id);
      SavedNode sn{r->label, r->level, impl.Flags(id) & (kReady | kDeleted)};
      w.ChunkPod(sn);
    }
  });
  // Links are read under their node locks: inserts are paused, but not a relink after a
  // recalibration.
  const std::size_t row0 = impl.links0.row_bytes();
  w.Section(kLnk0, std::uint64_t{n} * row0, [&] {
    for (std::uint32_t id = 0; id < n; ++id) {
      std::lock_guard<std::mutex> lock(impl.Lock(id));
      w.Chunk(impl.links0.Row(id), row0);
    }
  });
  std::uint64_t upper = 0;
  for (std::uint32_t id = 0; id < n; ++id) {
    upper += static_cast<std::uint64_t>(std::max(0, impl.Node(id)->level)) * (1 + impl.M) * 4;
  }
  w.Section(kUppr, upper, [&] {
    for (std::uint32_t id = 0; id < n; ++id) {
      const NodeRecord* r = impl.Node(id);
      if (r->level <= 0) continue;
      std::lock_guard<std::mutex> lock(impl.Lock(id));
      w.Chunk(r->upper, static_cast<std::size_t>(r->level) * (1 + impl.M) * 4);
    }
  });
  if (space != nullptr) {
    w.Section(kCode, std::uint64_t{n} * impl.code_row, [&] {
      for (std::uint32_t id = 0; id < n; ++id) w.Chunk(space->codes->Row(id), impl.code_row);
    });
    if (space->bits) {
      const std::size_t row = BinaryWords(dim) * 8;
      w.Section(kBits, std::uint64_t{n} * row, [&] {
        for (std::uint32_t id = 0; id < n; ++id) w.Chunk(space->bits->Row(id), row);
      });
    }
  }
  w.Section(kOrig, std::uint64_t{n} * dim * 4, [&] {
    for (std::uint32_t id = 0; id < n; ++id) w.Chunk(impl.Float(id), dim * 4);
  });
  w.Section(kEnd, 0, [] {});
  if (!w.ok()) return Unavailable("cannot write index file " + path + ": " + w.status().message());
  if (Status s = file.Commit(); !s.ok()) {
    return Unavailable("cannot write index file " + path + ": " + s.message());
  }
  return Status::Ok();
}

Result<std::unique_ptr<HnswIndex>> HnswIndex::Load(const std::string& path, const LoadOptions& lo) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return NotFound("cannot open index file " + path + ": " + std::strerror(errno));
  std::unique_ptr<FILE, int (*)(FILE*)> closer(f, std::fclose);
  std::fseek(f, 0, SEEK_END);
  long size = std::ftell(f);
  std::fseek(f, 0, SEEK_SET);
  SectionReader r(f, size < 0 ? 0 : static_cast<std::uint64_t>(size),
                  "index file " + path + " is damaged or not an index");

  char magic[8];
  std::uint32_t version = 0;
  if (!r.Raw(magic, 8) || std::memcmp(magic, kMagic, 8) != 0) return r.Fail("bad magic");
  if (!r.Raw(&version, 4)) return r.Fail("truncated header");
  if (version != kFormatVersion) {
    return InvalidArgument("index file " + path + " has format version " + std::to_string(version) +
                           "; this build reads version " + std::to_string(kFormatVersion));
  }

  SavedOptions so{};
  Status s = r.Open(kOpts, "OPTS");
  if (s.ok()) s = r.ChunkPod(&so);
  if (s.ok()) s = r.Close();
  if (!s.ok()) return s;
  if (so.dim == 0 || so.dim > 65535 || so.metric > 2 || so.M < 2 || so.M > 64 ||
      so.max_level > kMaxLevel || so.max_level < -1 || so.nodes >= 0xFFFFFFFFull ||
      (so.nodes > 0 && so.entry != kNone && so.entry >= so.nodes) ||
      !std::isfinite(so.drift_clip_rate) || !std::isfinite(so.compact_ratio)) {
    return r.Fail("options out of range");
  }
  // A section cannot be larger than the file: bound the node count before allocating.
  if (so.nodes * sizeof(SavedNode) > static_cast<std::uint64_t>(size)) return r.Fail("node count larger than the file");

  HnswOptions o;
  o.dim = so.dim;
  o.metric = static_cast<Metric>(so.metric);
  o.M = so.M;
  o.ef_construction = std::max<std::uint32_t>(so.ef_construction, 1);
  o.calibration_threshold = so.calibration_threshold;
  o.calibrate = so.calibrate != 0;
  o.binary_codes = so.binary_codes != 0;
  o.drift_window = so.drift_window;
  o.drift_clip_rate = so.drift_clip_rate;
  o.compact_ratio = so.compact_ratio;
  o.seed = so.seed;
  o.originals_path = lo.originals_path;
  o.background_maintenance = lo.background_maintenance;

  std::unique_ptr<HnswIndex> index(new HnswIndex(o));
  index->state_->impl = NewImpl(o, 0);
  Impl& impl = *index->state_->impl;
  const std::uint32_t n = static_cast<std::uint32_t>(so.nodes);
  const std::size_t dim = o.dim;

  // The params section is present exactly when the index was calibrated (or Q8-only): the
  // CODE section tells. Peek at the next tag.
  long here = std::ftell(f);
  std::uint32_t next_tag = 0;
  if (!r.Raw(&next_tag, 4)) return r.Fail("truncated after OPTS");
  std::fseek(f, here, SEEK_SET);
  if (next_tag == kParm) {
    Int8Params p;
    std::uint8_t scheme = 0, clip = 0;
    p.offset.resize(dim);
    p.scale.resize(dim);
    s = r.Open(kParm, "PARM");
    if (s.ok()) s = r.ChunkPod(&p.version);
    if (s.ok()) s = r.ChunkPod(&scheme);
    if (s.ok()) s = r.ChunkPod(&clip);
    if (s.ok()) s = r.ChunkPod(&p.sample_dot_error);
    if (s.ok()) s = r.ChunkPod(&p.sample_clip_rate);
    if (s.ok()) s = r.Chunk(p.offset.data(), dim * 4);
    if (s.ok()) s = r.Chunk(p.scale.data(), dim * 4);
    if (s.ok()) s = r.Close();
    if (!s.ok()) return s;
    if (scheme > 2 || clip > 1 || !AllFinite(p.offset.data(), dim) || !AllFinite(p.scale.data(), dim)) {
      return r.Fail("int8 params out of range");
    }
    for (float sc : p.scale) {
      if (!(sc > 0)) return r.Fail("int8 scale not positive");
    }
    p.scheme = static_cast<Int8Scheme>(scheme);
    p.clip = static_cast<ClipMethod>(clip);
    impl.space = impl.NewSpace(std::move(p));
  } else if (!o.calibrate) {
    return r.Fail("a Q8-only index without params");
  }

  s = impl.floats.Reserve(std::max<std::uint32_t>(n, 1));
  if (s.ok()) s = impl.nodes.Reserve(n);
  if (s.ok()) s = impl.links0.Reserve(n);
  if (s.ok() && impl.space) s = impl.space->codes->Reserve(n);
  if (s.ok() && impl.space && impl.space->bits) s = impl.space->bits->Reserve(n);
  if (!s.ok()) return s;

  s = r.Open(kNode, "NODE");
  if (!s.ok()) return s;
  if (r.left() != std::uint64_t{n} * sizeof(SavedNode)) return r.Fail("NODE size does not match the node count");
  std::uint64_t upper_expected = 0;
  std::size_t tombstones = 0;
  for (std::uint32_t id = 0; id < n; ++id) {
    SavedNode sn{};
    s = r.ChunkPod(&sn);
    if (!s.ok()) return s;
    if (sn.level < 0 || sn.level > kMaxLevel || (sn.flags & ~(kReady | kDeleted)) != 0) {
      return r.Fail("node record out of range");
    }
    NodeRecord* rec = impl.Node(id);
    rec->label = sn.label;
    rec->level = sn.level;
    rec->flags = sn.flags;
    rec->upper = nullptr;
    impl.count.store(id + 1);  // so the destructor frees what was allocated on failure
    if (sn.level > 0) {
      rec->upper = new std::uint32_t[static_cast<std::size_t>(sn.level) * (1 + impl.M)]();
      upper_expected += static_cast<std::uint64_t>(sn.level) * (1 + impl.M) * 4;
    }
    if ((sn.flags & (kReady | kDeleted)) == kReady) {
      if (!impl.label_to_id.emplace(sn.label, id).second) return r.Fail("a label appears twice");
    } else {
      ++tombstones;
    }
  }
  s = r.Close();
  if (!s.ok()) return s;
  impl.tombstones.store(tombstones);

  auto check_links = [&](const std::uint32_t* l, std::size_t cap) {
    if (l[0] > cap) return false;
    for (std::uint32_t j = 0; j < l[0]; ++j) {
      if (l[1 + j] >= n) return false;
    }
    return true;
  };
  s = r.Open(kLnk0, "LNK0");
  if (!s.ok()) return s;
  if (r.left() != std::uint64_t{n} * impl.links0.row_bytes()) return r.Fail("LNK0 size does not match");
  for (std::uint32_t id = 0; id < n; ++id) {
    s = r.Chunk(impl.links0.Row(id), impl.links0.row_bytes());
    if (!s.ok()) return s;
    if (!check_links(impl.links0.RowAs<std::uint32_t>(id), impl.M0)) return r.Fail("level-0 link out of range");
  }
  s = r.Close();
  if (!s.ok()) return s;

  s = r.Open(kUppr, "UPPR");
  if (!s.ok()) return s;
  if (r.left() != upper_expected) return r.Fail("UPPR size does not match the node levels");
  for (std::uint32_t id = 0; id < n; ++id) {
    NodeRecord* rec = impl.Node(id);
    for (int l = 1; l <= rec->level; ++l) {
      std::uint32_t* links = impl.Links(id, l);
      s = r.Chunk(links, (1 + impl.M) * 4);
      if (!s.ok()) return s;
      if (!check_links(links, impl.M)) return r.Fail("upper link out of range");
      for (std::uint32_t j = 0; j < links[0]; ++j) {
        if (impl.Node(links[1 + j])->level < l) return r.Fail("upper link to a node below its level");
      }
    }
  }
  s = r.Close();
  if (!s.ok()) return s;

  if (impl.space) {
    s = r.Open(kCode, "CODE");
    if (!s.ok()) return s;
    if (r.left() != std::uint64_t{n} * impl.code_row) return r.Fail("CODE size does not match");
    const std::int64_t max_sum = 127 * static_cast<std::int64_t>(dim);
    for (std::uint32_t id = 0; id < n; ++id) {
      s = r.Chunk(impl.space->codes->Row(id), impl.code_row);
      if (!s.ok()) return s;
      // The search kernels trust these: a sum out of range would overflow int32 arithmetic.
      const auto* meta = impl.space->codes->RowAs<StoredMeta>(id);
      const auto* codes = reinterpret_cast<const std::int8_t*>(impl.space->codes->Row(id) + sizeof(StoredMeta));
      std::int64_t sum = 0;
      for (std::size_t d = 0; d < dim; ++d) sum += codes[d];
      if (meta->sum != sum || sum > max_sum || sum < -max_sum || !std::isfinite(meta->alpha) ||
          !(meta->alpha > 0) || !std::isfinite(meta->norm2) || meta->norm2 < 0) {
        return r.Fail("code metadata out of range");
      }
    }
    s = r.Close();
    if (!s.ok()) return s;
    if (impl.space->bits) {
      const std::size_t row = BinaryWords(dim) * 8;
      s = r.Open(kBits, "BITS");
      if (!s.ok()) return s;
      if (r.left() != std::uint64_t{n} * row) return r.Fail("BITS size does not match");
      for (std::uint32_t id = 0; id < n; ++id) {
        s = r.Chunk(impl.space->bits->Row(id), row);
        if (!s.ok()) return s;
      }
      s = r.Close();
      if (!s.ok()) return s;
    }
  }
  s = r.Open(kOrig, "ORIG");
  if (!s.ok()) return s;
  if (r.left() != std::uint64_t{n} * dim * 4) return r.Fail("ORIG size does not match");
  for (std::uint32_t id = 0; id < n; ++id) {
    s = r.Chunk(impl.floats.Row(id), dim * 4);
    if (!s.ok()) return s;
    if (!AllFinite(impl.Float(id), dim)) return r.Fail("an original vector is not finite");
  }
  s = r.Close();
  if (!s.ok()) return s;
  s = r.Open(kEnd, "END");
  if (s.ok()) s = r.Close();
  if (!s.ok()) return s;

  if (n > 0 && impl.space && so.entry == kNone) return r.Fail("a graph without an entry point");
  if (impl.space && n > 0 && impl.Node(so.entry)->level != so.max_level) return r.Fail("entry point level mismatch");
  impl.entry.store(impl.space ? so.entry : kNone);
  impl.max_level.store(impl.space ? so.max_level : -1);
  impl.live_at_calibration = so.live_at_calibration;

  if (o.background_maintenance) {
    HnswIndex* self = index.get();
    index->state_->maintenance =
        std::make_unique<Maintenance>([self](bool re, bool c) { self->Maintain(re, c); });
  }
  return index;
}

}  // namespace semcached::vector
