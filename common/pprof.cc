#include "common/pprof.h"

#include <zlib.h>

#include <memory>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_format.h"

namespace vigil {

std::string FrameName(const v1::ProfileFrame& f) {
  if (!f.name().empty()) return f.name();
  return absl::StrFormat("%s+0x%x", f.module(), f.offset());
}

uint64_t FaultBytes(const v1::ProfileResponse& r, uint64_t samples) {
  return samples * r.fault_period() * 4096;
}

namespace {
class StringTable {
 public:
  explicit StringTable(perftools::profiles::Profile* p) : p_(p) { Index(""); }
  int64_t Index(const std::string& s) {
    auto [it, inserted] = ids_.try_emplace(s, static_cast<int64_t>(p_->string_table_size()));
    if (inserted) p_->add_string_table(s);
    return it->second;
  }

 private:
  perftools::profiles::Profile* p_;
  absl::flat_hash_map<std::string, int64_t> ids_;
};

}  // namespace

perftools::profiles::Profile ToPprof(const v1::ProfileResponse& r) {
  perftools::profiles::Profile p;
  StringTable st(&p);
  // Two values per sample: a count and its unit. CPU: samples and the CPU
  // time they stand for. Memory: the page faults the samples stand for
  // and their bytes (pprof shows the last type by default: bytes).
  const bool memory = r.kind() == v1::PROFILE_KIND_MEMORY;
  auto* t0 = p.add_sample_type();
  t0->set_type(st.Index(memory ? "faults" : "samples"));
  t0->set_unit(st.Index("count"));
  auto* t1 = p.add_sample_type();
  t1->set_type(st.Index(memory ? "fault_bytes" : "cpu"));
  t1->set_unit(st.Index(memory ? "bytes" : "nanoseconds"));
  p.mutable_period_type()->set_type(st.Index(memory ? "faults" : "cpu"));
  p.mutable_period_type()->set_unit(st.Index(memory ? "count" : "nanoseconds"));
  // What one sample stands for, in each value's unit.
  int64_t count_per_sample = 1, value_per_sample = 0;
  if (memory) {
    count_per_sample = r.fault_period();
    value_per_sample = static_cast<int64_t>(FaultBytes(r, 1));
    p.set_period(r.fault_period());
  } else {
    value_per_sample = r.sample_hz() > 0 ? 1000000000LL / r.sample_hz() : 0;
    p.set_period(value_per_sample);
  }
  p.set_time_nanos(r.covered().start_unix_ns());
  p.set_duration_nanos(r.covered().end_unix_ns() - r.covered().start_unix_ns());

  absl::flat_hash_map<std::string, uint64_t> mappings;
  absl::flat_hash_map<std::pair<std::string, std::string>, uint64_t> functions;
  for (int i = 0; i < r.frames_size(); ++i) {
    const v1::ProfileFrame& f = r.frames(i);
    auto [mit, mnew] = mappings.try_emplace(f.module(), mappings.size() + 1);
    if (mnew) {
      auto* m = p.add_mapping();
      m->set_id(mit->second);
      m->set_filename(st.Index(f.module()));
      m->set_has_functions(true);
    }
    const std::string name = FrameName(f);
    auto [fit, fnew] =
        functions.try_emplace(std::make_pair(name, f.module()), functions.size() + 1);
    if (fnew) {
      auto* fn = p.add_function();
      fn->set_id(fit->second);
      fn->set_name(st.Index(name));
      fn->set_system_name(st.Index(name));
      fn->set_filename(st.Index(f.module()));
    }
    auto* loc = p.add_location();
    loc->set_id(static_cast<uint64_t>(i) + 1);
    loc->set_mapping_id(mit->second);
    loc->set_address(f.offset());
    loc->add_line()->set_function_id(fit->second);
  }
  const int64_t k_pid = st.Index("pid"), k_tid = st.Index("tid"), k_comm = st.Index("comm"),
                k_pcomm = st.Index("process_comm");
  for (const v1::ProfileStack& s : r.stacks()) {
    auto* smp = p.add_sample();
    for (uint32_t id : s.frame_ids()) smp->add_location_id(static_cast<uint64_t>(id) + 1);
    smp->add_value(static_cast<int64_t>(s.samples()) * count_per_sample);
    smp->add_value(static_cast<int64_t>(s.samples()) * value_per_sample);
    auto* l = smp->add_label();
    l->set_key(k_pid);
    l->set_num(s.pid());
    l = smp->add_label();
    l->set_key(k_tid);
    l->set_num(s.tid());
    l = smp->add_label();
    l->set_key(k_comm);
    l->set_str(st.Index(s.comm()));
    l = smp->add_label();
    l->set_key(k_pcomm);
    l->set_str(st.Index(s.process_comm()));
  }
  return p;
}

absl::StatusOr<std::string> Gzip(const std::string& data) {
  z_stream zs = {};
  // 15 + 16: a gzip header and trailer around the deflate stream.
  if (deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return absl::InternalError("gzip: deflateInit2 failed");
  }
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&zs, deflateEnd);
  std::string out(deflateBound(&zs, data.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) return absl::InternalError("gzip: deflate failed");
  out.resize(zs.total_out);
  return out;
}

}  // namespace vigil
