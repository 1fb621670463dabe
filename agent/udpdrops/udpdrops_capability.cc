#include "agent/udpdrops/udpdrops_capability.h"

#include "common/status_macros.h"

namespace vigil {

UdpDropsCapability::UdpDropsCapability(const UdpDropsConfig& config, size_t store_max_records)
    : config_(config), store_max_records_(store_max_records), series_(config.metrics_max_series) {}

absl::Status UdpDropsCapability::Init(const InitContext& ctx) {
  VIGIL_ASSIGN_OR_RETURN(collector_, UdpDropsCollector::Create(config_));
  reasons_ = collector_->reasons();
  AddDegraded(collector_->degraded());
  table_ = ctx.store->Register<UdpDropInterval>(store_max_records_);
  return absl::OkStatus();
}

absl::Status UdpDropsCapability::Collect(const IntervalSpan& span, StoreWriter& store) {
  absl::StatusOr<UdpDropInterval> iv = collector_->Collect(span.end);
  if (!iv.ok()) return iv.status();
  loss_total_.Add(iv->loss);
  {
    absl::MutexLock lock(&mu_);
    series_.Add(*iv, reasons_);
  }
  store.Add(table_, span.start, span.end, *std::move(iv));
  return absl::OkStatus();
}

void UdpDropsCapability::Stop() { collector_.reset(); }

absl::StatusOr<v1::DropsResponse> UdpDropsCapability::Query(const StoreView& store,
                                                            const QueryContext& ctx,
                                                            const v1::DropsRequest& req) const {
  VIGIL_ASSIGN_OR_RETURN(const DropsQuery q, ValidateDropsRequest(req, reasons_));
  v1::DropsResponse resp;
  DropsMerger merger(q, reasons_);
  VIGIL_RETURN_IF_ERROR(
      store
          .MergeTable(
              req.range(), ctx, table_, [&](const auto& iv) { merger.Add(iv.data, iv.end); },
              [&](const Coverage& c) { merger.Finish(c.Seconds(), &resp); }, &resp)
          .status());
  resp.set_reasons_known(!reasons_.empty());
  return resp;
}

void UdpDropsCapability::FillStatus(const StoreView& store, v1::StatusResponse* out) const {
  LossesToProto(Losses(store), out->mutable_udpdrop_loss());
}

std::vector<std::pair<std::string, uint64_t>> UdpDropsCapability::Losses(
    const StoreView& store) const {
  return loss_total_.Named(store, table_);
}

void UdpDropsCapability::RenderMetrics(const StoreView&, Exposition* e) const {
  absl::MutexLock lock(&mu_);
  series_.Render(e);
}

}  // namespace vigil
