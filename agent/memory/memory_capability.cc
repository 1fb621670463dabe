#include "agent/memory/memory_capability.h"

namespace vigil {

absl::Status MemoryCapability::Init(const InitContext& ctx) {
  if (!config_.enabled) return absl::FailedPreconditionError("disabled (vigild --memory off)");
  absl::StatusOr<std::unique_ptr<MemoryCollector>> c = MemoryCollector::Create(config_);
  if (!c.ok()) return c.status();
  collector_ = *std::move(c);
  degraded_ = collector_->degraded();
  table_ = ctx.store->Register<MemoryInterval>(config_.store_max_records);
  return absl::OkStatus();
}

absl::Status MemoryCapability::Collect(const IntervalSpan& span, StoreWriter& store) {
  absl::StatusOr<MemoryInterval> iv = collector_->Collect(span.end);
  if (!iv.ok()) return iv.status();
  {
    absl::MutexLock lock(&mu_);
    loss_total_ += iv->loss;
    oom_kills_total_ += iv->ooms.size();
    last_iteration_ = collector_->last_iteration();
    last_processes_ = iv->procs.size();
  }
  store.Add(table_, span.start, span.end, *std::move(iv));
  return absl::OkStatus();
}

void MemoryCapability::Stop() { collector_.reset(); }

absl::StatusOr<v1::MemoryResponse> MemoryCapability::Query(const StoreView& store,
                                                           const QueryContext& ctx,
                                                           const v1::MemoryRequest& req) const {
  absl::StatusOr<MemoryQuery> q = ValidateMemoryRequest(req);
  if (!q.ok()) return q.status();
  absl::StatusOr<StoreView::Merge> m = store.BeginMerge(req.range(), ctx);
  if (!m.ok()) return m.status();
  v1::MemoryResponse resp;
  MemoryMerger merger(*q);
  const Coverage covered =
      store.ForEach(table_, m->from, m->to, [&](const auto& iv) { merger.Add(iv.data, iv.end); });
  merger.Finish(&resp);
  resp.mutable_loss()->set_store_dropped(store.DroppedRecords(table_));
  covered.ToProto(resp.mutable_covered());
  return resp;
}

void MemoryCapability::FillStatus(const StoreView& store, v1::StatusResponse* out) const {
  v1::MemoryLoss* l = out->mutable_memory_loss();
  l->set_store_dropped(store.DroppedRecords(table_));
  absl::MutexLock lock(&mu_);
  l->set_processes_over_cap(loss_total_.processes_over_cap);
  l->set_cgroups_over_cap(loss_total_.cgroups_over_cap);
  l->set_oom_ringbuf_full(loss_total_.oom_ringbuf_full);
  l->set_read_failed(loss_total_.read_failed);
}

std::vector<std::pair<std::string, uint64_t>> MemoryCapability::Losses(
    const StoreView& store) const {
  const uint64_t window_cap = store.DroppedRecords(table_);
  absl::MutexLock lock(&mu_);
  return {{"processes_over_cap", loss_total_.processes_over_cap},
          {"cgroups_over_cap", loss_total_.cgroups_over_cap},
          {"oom_ringbuf_full", loss_total_.oom_ringbuf_full},
          {"read_failed", loss_total_.read_failed},
          {"window_cap", window_cap}};
}

void MemoryCapability::RenderMetrics(const StoreView&, Exposition* e) const {
  absl::MutexLock lock(&mu_);
  e->Family("vigil_oom_kills_total", "counter",
            "Processes the kernel's OOM killer chose, since the agent started.");
  e->Sample("vigil_oom_kills_total", static_cast<double>(oom_kills_total_));
  e->Family("vigil_memory_processes", "gauge", "Processes recorded at the last interval.");
  e->Sample("vigil_memory_processes", static_cast<double>(last_processes_));
  e->Family("vigil_memory_iteration_seconds", "gauge",
            "Time the last task iteration took (every process's RSS counters), in seconds.");
  e->Sample("vigil_memory_iteration_seconds", absl::ToDoubleSeconds(last_iteration_));
}

}  // namespace vigil
