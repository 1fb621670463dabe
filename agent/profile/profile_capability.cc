#include "agent/profile/profile_capability.h"

#include "common/status_macros.h"

namespace vigil {
namespace {

void FillUnwinder(bool cfi, const UnwindStats& u, const UnwindSampleCounts& c,
                  v1::UnwinderStatus* out) {
  static constexpr const char* kEndNames[UNWIND_END_MAX] = {
      "root",   "no_user_stack", "no_process", "no_mapping",
      "no_row", "read_fault",    "depth",      "bad_frame"};
  out->set_mode(cfi ? "cfi" : "frame-pointers");
  out->set_processes(u.processes);
  out->set_files(u.files);
  out->set_files_without_cfi(u.files_fp);
  out->set_rows(u.rows);
  out->set_row_capacity(u.row_capacity);
  out->set_loads(u.loads);
  out->set_compiled(u.compiled);
  out->set_compile_failed(u.compile_failed);
  out->set_compile_ms(u.compile_ns / 1000000);
  out->set_rows_full(u.rows_full);
  out->set_files_full(u.files_full);
  out->set_processes_full(u.processes_full);
  out->set_mappings_dropped(u.mappings_dropped);
  out->set_deferred(u.deferred);
  out->set_evicted_files(u.evicted_files);
  out->set_frames(c.frames);
  out->set_cfi_frames(c.cfi_frames);
  out->set_fp_frames(c.fp_frames);
  out->clear_stack_ends();
  for (int i = 0; i < UNWIND_END_MAX; ++i) {
    v1::StackEnd* e = out->add_stack_ends();
    e->set_reason(kEndNames[i]);
    e->set_samples(c.ends[i]);
  }
}

}  // namespace

ProfileCapability::ProfileCapability(const ProfileConfig& config, size_t store_max_records,
                                     size_t fault_store_max_records)
    : config_(config),
      store_max_records_(store_max_records),
      fault_store_max_records_(fault_store_max_records) {}

absl::Status ProfileCapability::Init(const InitContext& ctx) {
  if (!config_.enabled) return Disabled("--profile off");
  // With the syscalls capability on, the large map-call hook rides on its
  // sys_exit program.
  const auto* syscalls = ctx.Get<SyscallsCapability>();
  VIGIL_ASSIGN_OR_RETURN(
      collector_,
      ProfileCollector::Create(config_, syscalls != nullptr ? syscalls->exit_hooks_fd() : -1));
  probe_hooks_ = collector_->probe_stack_hooks();
  table_ = ctx.store->Register<ProfileInterval>(store_max_records_);
  fault_period_ = collector_->faults_on() ? config_.fault_period : 0;
  map_min_bytes_ = collector_->maps_on() ? config_.map_min_bytes : 0;
  map_off_reason_ = config_.map_min_bytes == 0 ? "not recorded (vigild --profile-map-min-bytes 0)"
                                               : collector_->map_off_reason();
  if (memory_on()) memory_table_ = ctx.store->Register<ProfileInterval>(fault_store_max_records_);
  AddDegraded(collector_->fault_off_reason());
  AddDegraded(collector_->map_off_reason());
  absl::MutexLock lock(&mu_);
  status_.set_sample_hz(config_.sample_hz);
  status_.set_fault_period(fault_period_);
  status_.set_map_min_bytes(map_min_bytes_);
  status_.set_map_hook(collector_->map_hook());
  status_.set_event(collector_->event());
  status_.set_cpus(collector_->cpus());
  for (uint32_t id : collector_->ProgramIds()) status_.add_program_ids(id);
  return absl::OkStatus();
}

absl::Status ProfileCapability::Collect(const IntervalSpan& span, StoreWriter& store) {
  absl::StatusOr<ProfileIntervals> iv = collector_->Collect();
  const SymbolCacheStats st = collector_->symbol_stats();
  {
    absl::MutexLock lock(&mu_);
    status_.set_symbol_cache_processes(st.processes);
    status_.set_symbol_cache_evicted_exit(st.evicted_exit);
    status_.set_symbol_cache_evicted_exec(st.evicted_exec);
    status_.set_symbol_cache_evicted_capacity(st.evicted_capacity);
    status_.set_unnamed_frames(st.unnamed_frames);
    status_.set_symbol_module_evictions(st.module_evictions);
    status_.set_functions_interned(st.functions);
    status_.set_functions_overflow(st.functions_overflow);
    status_.set_symbol_memo_addrs(st.memo_addrs);
    status_.set_symbol_memo_resets(st.memo_resets);
    FillUnwinder(collector_->cfi(), collector_->unwind_stats(), collector_->unwind_counts(),
                 status_.mutable_unwinder());
    v1::DebuginfodStatus* d = status_.mutable_debuginfod();
    d->set_enabled(st.debuginfod.enabled);
    d->set_fetched(st.debuginfod.fetched);
    d->set_failed(st.debuginfod.failed);
    d->set_negative_cache_hits(st.debuginfod.negative_hits);
    d->set_queue_drops(st.debuginfod.queue_drops);
    d->set_cache_bytes(st.debuginfod.cache_bytes);
    d->set_cache_evictions(st.debuginfod.cache_evictions);
    if (iv.ok()) loss_total_ += iv->cpu.loss;
  }
  if (!iv.ok()) return iv.status();
  store.Add(table_, span.start, span.end, std::move(iv->cpu));
  if (memory_on()) store.Add(memory_table_, span.start, span.end, std::move(iv->memory));
  return absl::OkStatus();
}

void ProfileCapability::Stop() { collector_.reset(); }

absl::Status ProfileCapability::CheckKind(v1::ProfileKind kind) const {
  if (kind != v1::PROFILE_KIND_MEMORY || fault_period_ > 0) return absl::OkStatus();
  return absl::FailedPreconditionError(
      degraded_reason().empty() ? "page-fault sampling is off (vigild --profile-fault-period 0)"
                                : degraded_reason());
}

// GetHot's and GetProfile's path: the validated query, merged by a Merger
// over its kind's table. A merger whose result points into the store's
// frames finishes under the store's lock; one that holds its own
// references (kFinishUnderLock false) finishes after it.
template <typename Merger, typename Resp, typename Req>
absl::StatusOr<Resp> ProfileCapability::Merge(const StoreView& store, const QueryContext& ctx,
                                              const Req& req,
                                              absl::StatusOr<ProfileQuery> q) const {
  if (!q.ok()) return q.status();
  VIGIL_RETURN_IF_ERROR(CheckKind(req.kind()));
  q->fault_period = fault_period_;
  Resp resp;
  Merger merger(*q);
  VIGIL_RETURN_IF_ERROR(store
                            .MergeTable(
                                req.range(), ctx, TableFor(q->kind),
                                [&](const auto& iv) { merger.Add(iv.data); },
                                [&](const Coverage&) {
                                  if constexpr (Merger::kFinishUnderLock) merger.Finish(&resp);
                                },
                                &resp)
                            .status());
  if constexpr (!Merger::kFinishUnderLock) merger.Finish(&resp);
  resp.set_sample_hz(config_.sample_hz);
  return resp;
}

absl::StatusOr<v1::HotResponse> ProfileCapability::QueryHot(const StoreView& store,
                                                            const QueryContext& ctx,
                                                            const v1::HotRequest& req) const {
  return Merge<HotMerger, v1::HotResponse>(store, ctx, req, ValidateHotRequest(req));
}

absl::StatusOr<v1::ProfileResponse> ProfileCapability::QueryProfile(
    const StoreView& store, const QueryContext& ctx, const v1::ProfileRequest& req) const {
  return Merge<ProfileMerger, v1::ProfileResponse>(store, ctx, req, ValidateProfileRequest(req));
}

absl::StatusOr<v1::ProfileResponse> ProfileCapability::FaultProfile(const StoreView& store,
                                                                    uint32_t pid, absl::Time from,
                                                                    absl::Time to) const {
  if (absl::Status s = CheckKind(v1::PROFILE_KIND_MEMORY); !s.ok()) return s;
  ProfileQuery q;
  q.pid = pid;
  q.kind = PROFILE_KIND_FAULT;
  q.frames = v1::FRAME_FILTER_ALL;
  q.fault_period = fault_period_;
  ProfileMerger merger(q);
  store.ForEach(TableFor(q.kind), from, to, [&](const auto& iv) { merger.Add(iv.data); });
  v1::ProfileResponse resp;
  merger.Finish(&resp);  // holds its own references to the frames
  return resp;
}

void ProfileCapability::LargeMapCalls(const StoreView& store, uint32_t pid, absl::Time from,
                                      absl::Time to, size_t top, size_t max_frames,
                                      v1::LargeMapCalls* out) const {
  if (map_min_bytes_ == 0) {
    out->set_unavailable(map_off_reason_);
    return;
  }
  out->set_min_bytes(map_min_bytes_);
  MapCallMerger merger(pid, max_frames);
  store.ForEach(memory_table_, from, to, [&](const auto& iv) { merger.Add(iv.data); });
  merger.Finish(top, out);
}

void ProfileCapability::FillStatus(const StoreView& store, v1::StatusResponse* out) const {
  v1::ProfilerStatus* p = out->mutable_profiler();
  {
    absl::MutexLock lock(&mu_);
    *p = status_;
    p->set_samples(loss_total_.samples);
    p->set_fault_samples(loss_total_.fault_samples);
    p->set_map_calls(loss_total_.map_calls);
    p->set_brk_unknown(loss_total_.brk_unknown);
    p->set_fault_samples_without_user(loss_total_.fault_no_user);
    loss_total_.ToProto(store.DroppedRecords(table_), p->mutable_loss());
  }
  store.Inspect(table_, [p](const IntervalWindow<ProfileInterval>& w) {
    p->set_intervals_retained(static_cast<uint32_t>(w.size()));
    p->set_records_retained(w.records());
    return 0;
  });
  if (!memory_on()) return;
  p->set_fault_store_dropped(store.DroppedRecords(memory_table_));
  store.Inspect(memory_table_, [p](const IntervalWindow<ProfileInterval>& w) {
    p->set_fault_records_retained(w.records());
    return 0;
  });
}

std::vector<std::pair<std::string, uint64_t>> ProfileCapability::Losses(
    const StoreView& store) const {
  const uint64_t window_cap = store.DroppedRecords(table_);
  const uint64_t fault_window_cap = memory_on() ? store.DroppedRecords(memory_table_) : 0;
  absl::MutexLock lock(&mu_);
  const ProfileLossCounts& pl = loss_total_;
  return {{"map_full", pl.map_full},
          {"fault_window_cap", fault_window_cap},
          {"kernel_stack_collision", pl.kernel_collisions},
          {"stack_map_full", pl.stack_map_full},
          {"no_buffer", pl.no_buffer},
          {"drain_failed", pl.drain_failed},
          {"brk_unknown", pl.brk_unknown},
          {"window_cap", window_cap}};
}

void ProfileCapability::RenderMetrics(const StoreView&, Exposition* e) const {
  absl::MutexLock lock(&mu_);
  const ProfileLossCounts& pl = loss_total_;
  e->Family("vigil_profile_samples_total", "counter",
            "CPU samples the profiler took, by whether the CPU was idle.");
  e->Sample({{"cpu_state", "busy"}},
            static_cast<double>(pl.samples - std::min(pl.samples, pl.idle)));
  e->Sample({{"cpu_state", "idle"}}, static_cast<double>(pl.idle));
  if (fault_period_ > 0) {
    e->Counter("vigil_profile_fault_samples_total",
               "Page-fault samples the profiler took; each stands for "
               "vigil_profile_fault_period page faults.",
               static_cast<double>(pl.fault_samples));
    e->Gauge("vigil_profile_fault_period", "Page faults per page-fault sample.",
             static_cast<double>(fault_period_));
  }
  const v1::DebuginfodStatus& d = status_.debuginfod();
  if (!d.enabled()) return;
  e->Family("vigil_debuginfod_fetches_total", "counter",
            "Debug files of stripped modules asked of debuginfod servers, by result.");
  e->Sample({{"result", "fetched"}}, static_cast<double>(d.fetched()));
  e->Sample({{"result", "failed"}}, static_cast<double>(d.failed()));
  e->Family("vigil_debuginfod_requests_not_sent_total", "counter",
            "debuginfod requests not sent: refused by the negative cache, or the queue was full.");
  e->Sample({{"reason", "negative_cache"}}, static_cast<double>(d.negative_cache_hits()));
  e->Sample({{"reason", "queue_full"}}, static_cast<double>(d.queue_drops()));
  e->Gauge("vigil_debuginfod_cache_bytes", "Bytes of fetched debug files on disk.",
           static_cast<double>(d.cache_bytes()));
  e->Counter("vigil_debuginfod_cache_evictions_total",
             "Fetched debug files deleted to keep the cache within its byte bound.",
             static_cast<double>(d.cache_evictions()));
}

}  // namespace vigil
