#include "agent/cpu/cpu_capability.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace vigil {

absl::Status CpuCapability::Init(const InitContext& ctx) {
  if (!config_.enabled) return Disabled("--cpu off");
  VIGIL_ASSIGN_OR_RETURN(collector_, CpuCollector::Create(config_));
  from_proc_ = !collector_->uses_bpf();
  fallback_reason_ = collector_->fallback_reason();
  program_ids_ = collector_->ProgramIds();
  if (from_proc_ && config_.source == CpuSource::kAuto) {
    AddDegraded(
        absl::StrCat("reading /proc, which costs more per thread (the task iterator did "
                     "not load: ",
                     fallback_reason_, ")"));
  }
  table_ = ctx.store->Register<CpuInterval>(config_.store_max_records);
  return absl::OkStatus();
}

absl::Status CpuCapability::Collect(const IntervalSpan& span, StoreWriter& store) {
  CpuInterval iv = collector_->Collect();
  loss_total_.Add(iv.loss);
  {
    absl::MutexLock lock(&mu_);
    last_pass_ns_ = iv.pass_ns;
    last_tasks_ = iv.tasks;
  }
  store.Add(table_, span.start, span.end, std::move(iv));
  return absl::OkStatus();
}

void CpuCapability::Stop() { collector_.reset(); }

uint64_t CpuCapability::last_pass_ns() const {
  absl::MutexLock lock(&mu_);
  return last_pass_ns_;
}

CpuUsage CpuCapability::Usage(const StoreView& store, absl::Time from, absl::Time to) const {
  CpuUsage u;
  u.covered = store.ForEach(table_, from, to, [&](const auto& iv) { u.Add(iv.data); });
  return u;
}

void CpuCapability::FillStatus(const StoreView& store, v1::StatusResponse* out) const {
  v1::CpuStatus* s = out->mutable_cpu();
  s->set_source(from_proc_ ? "proc" : "bpf-iterator");
  s->set_fallback_reason(fallback_reason_);
  for (uint32_t id : program_ids_) s->add_program_ids(id);
  LossesToProto(Losses(store), s->mutable_loss());
  absl::MutexLock lock(&mu_);
  s->set_tasks(last_tasks_);
  s->set_pass_ns(last_pass_ns_);
  s->set_ns_per_task(last_tasks_ > 0 ? static_cast<double>(last_pass_ns_) / last_tasks_ : 0);
}

std::vector<std::pair<std::string, uint64_t>> CpuCapability::Losses(const StoreView& store) const {
  return loss_total_.Named(store, table_);
}

void CpuCapability::RenderMetrics(const StoreView&, Exposition* e) const {
  absl::MutexLock lock(&mu_);
  e->Gauge("vigil_cpu_pass_seconds",
           "Time the last pass over every thread's runtime took in the agent, in seconds.",
           static_cast<double>(last_pass_ns_) / 1e9);
  e->Gauge("vigil_cpu_tasks", "Threads read by the last pass.", static_cast<double>(last_tasks_));
}

}  // namespace vigil
