#include "agent/top/top_query.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/cpu/cpu_capability.h"
#include "agent/memory/memory_capability.h"
#include "agent/profile/profile_capability.h"
#include "agent/spin/spin_capability.h"
#include "agent/syscalls/syscalls_capability.h"
#include "agent/top/top_join.h"
#include "agent/udpdrops/udpdrops_capability.h"

namespace vigil {
namespace {

// Every row of a table: the join needs them all before it orders and cuts.
constexpr uint32_t kAllRows = 10000;

}  // namespace

absl::StatusOr<v1::TopResponse> QueryTop(const TopSources& src, const StoreView& store,
                                         const QueryContext& ctx, const v1::TopRequest& req) {
  const absl::Time t0 = absl::Now();
  absl::StatusOr<TopQuery> q = ValidateTopRequest(req);
  if (!q.ok()) return q.status();
  TopInputs in;
  in.hostname = src.hostname;
  in.agent_pid = src.agent_pid;
  in.agent_rss_bytes = src.agent_rss_bytes;
  in.losses = src.losses;
  auto off = [&](const char* columns, const char* cap) {
    const std::string why = src.off_reason ? src.off_reason(cap) : "";
    in.unavailable.emplace_back(
        columns, absl::StrCat("the ", cap, " capability is off", why.empty() ? "" : ": ", why));
  };
  auto failed = [&](const char* columns, const absl::Status& s) {
    in.unavailable.emplace_back(columns, std::string(s.message()));
  };

  // Each query below takes (and frees) its own merge slot, one at a time,
  // so a screen never holds two of the agent's bounded slots.
  std::optional<CpuUsage> cpu;
  std::optional<v1::ProfileResponse> profile;
  if (src.cpu != nullptr) {
    absl::StatusOr<StoreView::Merge> m = store.BeginMerge(req.range(), ctx);
    if (!m.ok()) return m.status();  // a range outside the window: the request's fault
    cpu = src.cpu->Usage(store, m->from, m->to);
    in.cpu = &*cpu;
  } else {
    off("cpu", "cpu");
    if (src.profile != nullptr) {
      v1::ProfileRequest pr;
      *pr.mutable_range() = req.range();
      pr.set_frames(v1::FRAME_FILTER_USER);
      absl::StatusOr<v1::ProfileResponse> p = src.profile->QueryProfile(store, ctx, pr);
      if (p.ok()) {
        profile = *std::move(p);
        in.profile = &*profile;
      }
    }
  }

  // One capability's answer kept in *kept and joined through *into, or
  // why its columns stay empty (off, or its query failed).
  auto ask = [&](const char* columns, const char* cap, bool on, auto&& query, auto* kept,
                 auto** into) {
    if (!on) return off(columns, cap);
    auto r = query();
    if (!r.ok()) return failed(columns, r.status());
    *kept = *std::move(r);
    *into = &**kept;
  };
  std::optional<v1::MemoryResponse> memory;
  ask(
      "memory", "memory", src.memory != nullptr,
      [&] {
        v1::MemoryRequest r;
        *r.mutable_range() = req.range();
        r.set_top(kAllRows);
        return src.memory->Query(store, ctx, r);
      },
      &memory, &in.memory);
  std::optional<v1::SyscallsResponse> syscalls;
  ask(
      "syscalls", "syscalls", src.syscalls != nullptr,
      [&] {
        v1::SyscallsRequest r;
        *r.mutable_range() = req.range();
        r.set_group_by(v1::SYSCALL_GROUP_BY_THREAD);
        r.set_top(kAllRows);
        r.set_top_syscalls(1);  // the totals count every syscall; one row is kept
        return src.syscalls->Query(store, ctx, r);
      },
      &syscalls, &in.syscalls);
  if (syscalls && !syscalls->latency_measured()) {
    in.unavailable.emplace_back("syscall time",
                                "latency is not measured (vigild --syscalls-latency off)");
  }
  std::optional<v1::DropsResponse> drops;
  ask(
      "udpdrops", "udpdrops", src.udpdrops != nullptr,
      [&] {
        v1::DropsRequest r;
        *r.mutable_range() = req.range();
        r.set_top(kAllRows);
        return src.udpdrops->Query(store, ctx, r);
      },
      &drops, &in.drops);
  std::optional<v1::ListAlertsResponse> alerts;
  ask(
      "alerts", "spin", src.spin != nullptr,
      [&] {
        v1::ListAlertsRequest r;
        r.set_recent(1);  // firing ones come whole; resolved ones are not shown
        return src.spin->ListAlerts(r);
      },
      &alerts, &in.alerts);

  v1::TopResponse resp = JoinTop(in, *q);
  if (src.cpu != nullptr) resp.set_cpu_pass_ns(src.cpu->last_pass_ns());
  resp.set_query_ns(absl::ToInt64Nanoseconds(absl::Now() - t0));
  return resp;
}

}  // namespace vigil
