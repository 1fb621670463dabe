#include "agent/syscalls/syscalls_capability.h"

#include "common/status_macros.h"

namespace vigil {

SyscallsCapability::SyscallsCapability(const SyscallsConfig& config, size_t store_max_records,
                                       size_t metrics_max_processes)
    : config_(config), store_max_records_(store_max_records), series_(metrics_max_processes) {}

absl::Status SyscallsCapability::Init(const InitContext& ctx) {
  VIGIL_ASSIGN_OR_RETURN(collector_, SyscallsCollector::Create(config_));
  exit_hooks_fd_ = collector_->exit_hooks_fd();
  hostname_ = ctx.hostname;
  Coarsening<SyscallInterval> coarsening;
  coarsening.max_span = config_.store_coarsen_span;
  coarsening.merge = [](SyscallInterval& older, const SyscallInterval& newer) {
    older.MergeNewer(newer);
  };
  table_ = ctx.store->Register<SyscallInterval>(store_max_records_, std::move(coarsening));
  return absl::OkStatus();
}

absl::Status SyscallsCapability::Collect(const IntervalSpan& span, StoreWriter& store) {
  absl::StatusOr<SyscallInterval> iv = collector_->Collect();
  absl::MutexLock lock(&mu_);
  last_ok_ = iv.ok();
  if (!iv.ok()) return iv.status();  // what is stored stays; retried next interval
  loss_total_.Add(iv->loss);
  series_.Add(*iv);
  fill_ = static_cast<double>(iv->records.size()) / config_.max_entries;
  store.Add(table_, span.start, span.end, *std::move(iv));
  return absl::OkStatus();
}

void SyscallsCapability::Stop() { collector_.reset(); }

bool SyscallsCapability::last_ok() const {
  absl::MutexLock lock(&mu_);
  return last_ok_;
}

absl::StatusOr<v1::SyscallsResponse> SyscallsCapability::Query(
    const StoreView& store, const QueryContext& ctx, const v1::SyscallsRequest& req) const {
  VIGIL_ASSIGN_OR_RETURN(const SyscallQuery q, ValidateSyscallsRequest(req));
  v1::SyscallsResponse resp;
  SyscallMerger merger(q);
  // The merger's second pass (histograms of the rows that made the cut)
  // reads the same intervals: MergeTable runs Finish under the same lock.
  VIGIL_RETURN_IF_ERROR(store
                            .MergeTable(
                                req.range(), ctx, table_,
                                [&](const auto& iv) { merger.Add(iv.data); },
                                [&](const Coverage&) { merger.Finish(&resp); }, &resp)
                            .status());
  resp.set_latency_measured(config_.measure_latency);
  if (config_.measure_latency) resp.set_latency_sample_every(config_.latency_sample_every);
  resp.set_hostname(hostname_);
  return resp;
}

void SyscallsCapability::FillStatus(const StoreView& store, v1::StatusResponse* out) const {
  store.Inspect(table_, [&](const IntervalWindow<SyscallInterval>& w) {
    if (!w.empty()) out->set_oldest_unix_ns(absl::ToUnixNanos(w.oldest_start()));
    out->set_intervals_retained(static_cast<uint32_t>(w.size()));
    return 0;
  });
  LossesToProto(Losses(store), out->mutable_syscall_loss());
}

std::vector<std::pair<std::string, uint64_t>> SyscallsCapability::Losses(
    const StoreView& store) const {
  return loss_total_.Named(store, table_);
}

void SyscallsCapability::RenderMetrics(const StoreView& store, Exposition* e) const {
  {
    absl::MutexLock lock(&mu_);
    series_.Render(e);
    e->Counter("vigil_metrics_series_evicted_total",
               "Process names whose series were dropped (least recently seen first) because "
               "metrics-max-processes was reached.",
               static_cast<double>(series_.evicted()));
    e->Family("vigil_map_fill_ratio", "gauge",
              "Entries used in the last interval over a BPF map's max_entries.");
    e->Sample({{"map", "syscalls_stats"}}, fill_);
  }
  e->Family("vigil_store_coarsened_intervals_total", "counter",
            "Intervals merged into an older neighbour to stay under the store's record cap "
            "(syscalls-store-coarsen).");
  e->Sample({{"table", "syscalls"}}, static_cast<double>(store.Inspect(
                                         table_, [](const auto& w) { return w.coarsened(); })));
  e->Gauge("vigil_store_records", "Records held in the time-window store.",
           store.Inspect(table_, [](const auto& w) { return w.records(); }));
}

}  // namespace vigil
