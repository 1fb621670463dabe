#include "agent/udpdrops/udpdrops_capability.h"

namespace vigil {

UdpDropsCapability::UdpDropsCapability(const UdpDropsConfig& config, size_t store_max_records)
    : config_(config), store_max_records_(store_max_records), series_(config.metrics_max_series) {}

absl::Status UdpDropsCapability::Init(const InitContext& ctx) {
  absl::StatusOr<std::unique_ptr<UdpDropsCollector>> c = UdpDropsCollector::Create(config_);
  if (!c.ok()) return c.status();
  collector_ = *std::move(c);
  reasons_ = collector_->reasons();
  AddDegraded(collector_->degraded());
  table_ = ctx.store->Register<UdpDropInterval>(store_max_records_);
  return absl::OkStatus();
}

absl::Status UdpDropsCapability::Collect(const IntervalSpan& span, StoreWriter& store) {
  absl::StatusOr<UdpDropInterval> iv = collector_->Collect(span.end);
  if (!iv.ok()) return iv.status();
  {
    absl::MutexLock lock(&mu_);
    loss_total_ += iv->loss;
    series_.Add(*iv, reasons_);
  }
  store.Add(table_, span.start, span.end, *std::move(iv));
  return absl::OkStatus();
}

void UdpDropsCapability::Stop() { collector_.reset(); }

absl::StatusOr<v1::DropsResponse> UdpDropsCapability::Query(const StoreView& store,
                                                            const QueryContext& ctx,
                                                            const v1::DropsRequest& req) const {
  absl::StatusOr<DropsQuery> q = ValidateDropsRequest(req, reasons_);
  if (!q.ok()) return q.status();
  absl::StatusOr<StoreView::Merge> m = store.BeginMerge(req.range(), ctx);
  if (!m.ok()) return m.status();

  v1::DropsResponse resp;
  DropsMerger merger(*q, reasons_);
  const Coverage covered =
      store.ForEach(table_, m->from, m->to, [&](const auto& iv) { merger.Add(iv.data, iv.end); });
  merger.Finish(covered.Seconds(), &resp);
  resp.set_reasons_known(!reasons_.empty());
  resp.mutable_loss()->set_store_dropped(store.DroppedRecords(table_));
  covered.ToProto(resp.mutable_covered());
  return resp;
}

void UdpDropsCapability::FillStatus(const StoreView& store, v1::StatusResponse* out) const {
  LossesToProto(Losses(store), out->mutable_udpdrop_loss());
}

std::vector<std::pair<std::string, uint64_t>> UdpDropsCapability::Losses(
    const StoreView& store) const {
  const uint64_t window_cap = store.DroppedRecords(table_);
  absl::MutexLock lock(&mu_);
  return loss_total_.Named({{"window_cap", window_cap}});
}

void UdpDropsCapability::RenderMetrics(const StoreView&, Exposition* e) const {
  absl::MutexLock lock(&mu_);
  series_.Render(e);
}

}  // namespace vigil
