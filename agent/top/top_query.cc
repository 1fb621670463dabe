#include "agent/top/top_query.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/alerts/alert_stream.h"
#include "agent/cpu/cpu_capability.h"
#include "agent/memory/memory_capability.h"
#include "agent/profile/profile_capability.h"
#include "agent/syscalls/syscalls_capability.h"
#include "agent/top/top_join.h"
#include "agent/udpdrops/udpdrops_capability.h"

namespace vigil {
namespace {

// Every row of a table: the join needs them all before it orders and cuts.
constexpr uint32_t kAllRows = 10000;

// A growth rate needs samples: over a refresh period of one interval the
// least-squares slope has one point and says 0. RSS growth is read over at
// least this much (within the window); RSS itself is still the last sample.
constexpr absl::Duration kMinGrowthRange = absl::Seconds(10);

// The range at least `min` long (within the window), unless it is the
// whole window or a past range.
v1::TimeRange AtLeast(const v1::TimeRange& r, absl::Duration min, absl::Duration window) {
  v1::TimeRange g = r;
  if (r.since_ago_ns() == 0 || r.until_ago_ns() != 0) return g;
  g.set_since_ago_ns(std::max(r.since_ago_ns(), absl::ToInt64Nanoseconds(std::min(min, window))));
  return g;
}

// A request for every row of `range`.
template <typename Request>
Request AllRows(const v1::TimeRange& range) {
  Request r;
  *r.mutable_range() = range;
  r.set_top(kAllRows);
  return r;
}

}  // namespace

absl::StatusOr<v1::TopResponse> QueryTop(const TopSources& src, const StoreView& store,
                                         const QueryContext& ctx, const v1::TopRequest& request) {
  const absl::Time t0 = absl::Now();
  absl::StatusOr<TopQuery> q = ValidateTopRequest(request);
  if (!q.ok()) return q.status();
  // A range of one interval can fall between two collections and cover
  // none: two always hold a whole one (rates are over what is covered).
  v1::TopRequest wide = request;
  *wide.mutable_range() = AtLeast(request.range(), 2 * src.interval, src.window);
  const v1::TopRequest& req = wide;
  // A range outside the window is the request's fault, whichever
  // capability would have noticed it first.
  if (absl::Status s = store.Resolve(req.range(), absl::Now()).status(); !s.ok()) return s;
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
    if (m.ok()) {
      cpu = src.cpu->Usage(store, m->from, m->to);
      in.cpu = &*cpu;
    } else {
      failed("cpu", m.status());  // no merge slot before the deadline
    }
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

  // One capability's answer to `r` kept in *kept and joined through *into,
  // or why its columns stay empty (off, or its query failed).
  auto ask = [&](const char* columns, const char* cap_name, const auto* cap, const auto& r,
                 auto* kept, auto** into) {
    if (cap == nullptr) return off(columns, cap_name);
    auto answer = cap->Query(store, ctx, r);
    if (!answer.ok()) return failed(columns, answer.status());
    *kept = *std::move(answer);
    *into = &**kept;
  };
  std::optional<v1::MemoryResponse> memory;
  ask("memory", "memory", src.memory,
      AllRows<v1::MemoryRequest>(AtLeast(req.range(), kMinGrowthRange, src.window)), &memory,
      &in.memory);
  std::optional<v1::SyscallsResponse> syscalls;
  auto by_thread = AllRows<v1::SyscallsRequest>(req.range());
  by_thread.set_group_by(v1::SYSCALL_GROUP_BY_THREAD);
  by_thread.set_top_syscalls(1);  // the totals count every syscall; one row is kept
  ask("syscalls", "syscalls", src.syscalls, by_thread, &syscalls, &in.syscalls);
  if (syscalls && !syscalls->latency_measured()) {
    in.unavailable.emplace_back("syscall time",
                                "latency is not measured (vigild --syscalls-latency off)");
  }
  std::optional<v1::DropsResponse> drops;
  ask("udpdrops", "udpdrops", src.udpdrops, AllRows<v1::DropsRequest>(req.range()), &drops,
      &in.drops);
  std::optional<v1::ListAlertsResponse> alerts;
  if (src.alerts == nullptr) {
    off("alerts", "alerts");
  } else {
    v1::ListAlertsRequest r;
    r.set_recent(1);  // firing ones come whole; resolved ones are not shown
    absl::StatusOr<v1::ListAlertsResponse> a = src.alerts->List(r);
    if (a.ok()) {
      alerts = *std::move(a);
      in.alerts = &*alerts;
    } else {
      failed("alerts", a.status());
    }
  }

  if (!src.spin_on) off("spin markers", "spin");
  v1::TopResponse resp = JoinTop(in, *q);
  if (src.cpu != nullptr) resp.set_cpu_pass_ns(src.cpu->last_pass_ns());
  resp.set_query_ns(absl::ToInt64Nanoseconds(absl::Now() - t0));
  return resp;
}

}  // namespace vigil
