#include "agent/syscalls/syscalls_capability.h"

namespace vigil {

SyscallsCapability::SyscallsCapability(const SyscallsConfig& config, size_t store_max_records,
                                       size_t metrics_max_processes)
    : config_(config), store_max_records_(store_max_records), series_(metrics_max_processes) {}

absl::Status SyscallsCapability::Init(const InitContext& ctx) {
  absl::StatusOr<std::unique_ptr<SyscallsCollector>> c = SyscallsCollector::Create(config_);
  if (!c.ok()) return c.status();
  collector_ = *std::move(c);
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
  loss_total_ += iv->loss;
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
  absl::StatusOr<SyscallQuery> q = ValidateSyscallsRequest(req);
  if (!q.ok()) return q.status();
  absl::StatusOr<StoreView::Merge> m = store.BeginMerge(req.range(), ctx);
  if (!m.ok()) return m.status();

  v1::SyscallsResponse resp;
  SyscallMerger merger(*q);
  // The merger's second pass (histograms of the rows that made the cut)
  // reads the same intervals, so Finish runs under the same reader lock.
  const Coverage covered = store.ForEach(
      table_, m->from, m->to, [&](const auto& iv) { merger.Add(iv.data); },
      [&] { merger.Finish(&resp); });
  resp.set_latency_measured(config_.measure_latency);
  if (config_.measure_latency) resp.set_latency_sample_every(config_.latency_sample_every);
  resp.set_hostname(hostname_);
  resp.mutable_loss()->set_store_dropped(store.DroppedRecords(table_));
  covered.ToProto(resp.mutable_covered());
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
  const uint64_t window_cap = store.DroppedRecords(table_);
  absl::MutexLock lock(&mu_);
  return loss_total_.Named({{"window_cap", window_cap}});
}

void SyscallsCapability::RenderMetrics(const StoreView& store, Exposition* e) const {
  {
    absl::MutexLock lock(&mu_);
    series_.Render(e);
    e->Family("vigil_metrics_series_evicted_total", "counter",
              "Process names whose series were dropped (least recently seen first) because "
              "metrics-max-processes was reached.");
    e->Sample("vigil_metrics_series_evicted_total", static_cast<double>(series_.evicted()));
    e->Family("vigil_map_fill_ratio", "gauge",
              "Entries used in the last interval over a BPF map's max_entries.");
    e->Sample("vigil_map_fill_ratio", {{"map", "syscalls_stats"}}, fill_);
  }
  e->Family("vigil_store_coarsened_intervals_total", "counter",
            "Intervals merged into an older neighbour to stay under the store's record cap "
            "(syscalls-store-coarsen).");
  e->Sample(
      "vigil_store_coarsened_intervals_total", {{"table", "syscalls"}},
      static_cast<double>(store.Inspect(table_, [](const auto& w) { return w.coarsened(); })));
  e->Family("vigil_store_records", "gauge", "Records held in the time-window store.");
  e->Sample("vigil_store_records",
            store.Inspect(table_, [](const auto& w) { return w.records(); }));
}

}  // namespace vigil
