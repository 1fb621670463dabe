// The Agent's profiler capability: creation, per-interval collection into
// the store, and the GetHot / GetProfile queries (which read only the store).
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "agent/agent.h"

namespace vigil {

void Agent::CreateProfiler() {
  if (!config_.profile.enabled) {
    capabilities_.push_back({"profile", "off", "disabled (vigild --profile off)"});
    return;
  }
  absl::StatusOr<std::unique_ptr<ProfileCollector>> pc = ProfileCollector::Create(config_.profile);
  if (!pc.ok()) {
    capabilities_.push_back({"profile", "off", std::string(pc.status().message())});
    return;
  }
  profile_ = *std::move(pc);
  capabilities_.push_back({"profile", "running", ""});
  absl::MutexLock lock(&store_mu_);
  profiler_on_ = true;
  profiler_status_.set_sample_hz(config_.profile.sample_hz);
  profiler_status_.set_event(profile_->event());
  profiler_status_.set_cpus(profile_->cpus());
  for (uint32_t id : profile_->ProgramIds()) profiler_status_.add_program_ids(id);
}

void Agent::CollectProfile(absl::Time start, absl::Time end) {
  if (profile_ == nullptr) return;
  absl::StatusOr<ProfileInterval> iv = profile_->Collect();
  const SymbolCacheStats st = profile_->symbol_stats();
  absl::MutexLock lock(&store_mu_);
  profiler_status_.set_symbol_cache_processes(st.processes);
  profiler_status_.set_symbol_cache_evicted_exit(st.evicted_exit);
  profiler_status_.set_symbol_cache_evicted_exec(st.evicted_exec);
  profiler_status_.set_symbol_cache_evicted_capacity(st.evicted_capacity);
  profiler_status_.set_unnamed_frames(st.unnamed_frames);
  profiler_status_.set_symbol_module_evictions(st.module_evictions);
  profiler_status_.set_functions_interned(st.functions);
  profiler_status_.set_functions_overflow(st.functions_overflow);
  if (!iv.ok()) {
    last_error_ = std::string(iv.status().message());
    fprintf(stderr, "vigild: %s\n", last_error_.c_str());
    return;
  }
  profile_loss_total_ += iv->loss;
  profile_window_.Add(start, end, *std::move(iv));
}

absl::StatusOr<v1::HotResponse> Agent::QueryHot(const v1::HotRequest& req) const {
  const absl::Time began = absl::Now();
  if (!profiler_on_) return absl::FailedPreconditionError("the profiler is off on this agent (see vigil status)");
  absl::StatusOr<ProfileQuery> q = ValidateHotRequest(req);
  if (!q.ok()) return q.status();
  absl::Time from, to;
  if (absl::Status s = ResolveRange(req.range(), absl::Now(), &from, &to); !s.ok()) return s;
  const QuerySlot slot(this);  // merges are bounded in number (memory)
  v1::HotResponse resp;
  HotMerger merger(*q);
  absl::Time first = absl::InfiniteFuture(), last = absl::InfinitePast();
  uint32_t intervals = 0;
  uint64_t dropped = 0;
  {
    absl::ReaderMutexLock lock(&store_mu_);
    profile_window_.ForEachOverlapping(from, to, [&](const auto& iv) {
      merger.Add(iv.data);
      first = std::min(first, iv.start);
      last = std::max(last, iv.end);
      ++intervals;
    });
    dropped = profile_window_.dropped_records();
    // Finish copies what it needs from frames the store still holds.
    merger.Finish(&resp);
  }
  resp.mutable_loss()->set_store_dropped(dropped);
  resp.set_sample_hz(config_.profile.sample_hz);
  if (intervals > 0) {
    resp.mutable_covered()->set_start_unix_ns(absl::ToUnixNanos(first));
    resp.mutable_covered()->set_end_unix_ns(absl::ToUnixNanos(last));
  }
  resp.mutable_covered()->set_intervals(intervals);
  resp.set_query_ns(absl::ToInt64Nanoseconds(absl::Now() - began));
  return resp;
}

absl::StatusOr<v1::ProfileResponse> Agent::QueryProfile(const v1::ProfileRequest& req) const {
  if (!profiler_on_) return absl::FailedPreconditionError("the profiler is off on this agent (see vigil status)");
  absl::StatusOr<ProfileQuery> q = ValidateProfileRequest(req);
  if (!q.ok()) return q.status();
  absl::Time from, to;
  if (absl::Status s = ResolveRange(req.range(), absl::Now(), &from, &to); !s.ok()) return s;
  const QuerySlot slot(this);  // merges are bounded in number (memory)
  v1::ProfileResponse resp;
  ProfileMerger merger(*q);
  absl::Time first = absl::InfiniteFuture(), last = absl::InfinitePast();
  uint32_t intervals = 0;
  uint64_t dropped = 0;
  {
    absl::ReaderMutexLock lock(&store_mu_);
    profile_window_.ForEachOverlapping(from, to, [&](const auto& iv) {
      merger.Add(iv.data);
      first = std::min(first, iv.start);
      last = std::max(last, iv.end);
      ++intervals;
    });
    dropped = profile_window_.dropped_records();
  }
  merger.Finish(&resp);  // holds its own references to the frames
  resp.mutable_loss()->set_store_dropped(dropped);
  resp.set_sample_hz(config_.profile.sample_hz);
  if (intervals > 0) {
    resp.mutable_covered()->set_start_unix_ns(absl::ToUnixNanos(first));
    resp.mutable_covered()->set_end_unix_ns(absl::ToUnixNanos(last));
  }
  resp.mutable_covered()->set_intervals(intervals);
  return resp;
}

}  // namespace vigil
