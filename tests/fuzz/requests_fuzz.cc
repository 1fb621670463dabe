// libFuzzer target: every query a gRPC client can send, through the same
// pure steps the capabilities take (validate, resolve the range against the
// window, merge the window store's intervals, make strings safe), over a
// small synthetic store built once; and /debug/pprof's URL parsing and
// serving over the same store. The first byte picks the RPC (GetSyscalls,
// GetDrops, GetHot, GetProfile, GetMemory, ListAlerts, or /debug/pprof);
// the rest is the request in protobuf wire format (for pprof: the URL path,
// then "?k=v&k=v").
//
// Properties: no crash; an error is a client's error (INVALID_ARGUMENT,
// FAILED_PRECONDITION, NOT_FOUND, ...; never UNKNOWN or INTERNAL) with a
// one-line message of at most kMaxMessage bytes, since messages echo what
// the client sent; an answer respects the request's top and still parses
// after MakeStringsSafe (the store's names are hostile: control characters,
// invalid UTF-8). Built and run by tests/fuzz/run.sh.
#include <bpf/btf.h>
#include <google/protobuf/stubs/logging.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/alerts/alert_stream.h"
#include "agent/memory/memory_aggregate.h"
#include "agent/metrics/pprof_http.h"
#include "agent/profile/profile_aggregate.h"
#include "agent/store/window_store.h"
#include "agent/syscalls/syscalls_aggregate.h"
#include "agent/udpdrops/kernel_btf.h"
#include "agent/udpdrops/udpdrops_aggregate.h"
#include "common/safe_proto.h"

namespace vigil {
namespace {

constexpr size_t kMaxMessage = 512;
constexpr absl::Duration kWindow = absl::Minutes(10);

[[noreturn]] void Fail(const char* what, absl::string_view detail) {
  fprintf(stderr, "%s: %.700s\n", what, std::string(detail).c_str());
  __builtin_trap();
}

void CheckError(const absl::Status& s, const char* rpc) {
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kDeadlineExceeded:
      break;
    default:
      Fail(rpc, s.ToString());
  }
  const absl::string_view m = s.message();
  if (m.empty() || m.find('\n') != absl::string_view::npos || m.size() > kMaxMessage) {
    Fail(rpc, absl::StrCat("error not one bounded line (", m.size(), " bytes): ", m));
  }
}

// A range every capability accepts is one it can resolve: both bounds
// in the past, until more recent than since (since 0: the whole window).
void CheckRange(const v1::TimeRange& r, const char* rpc) {
  if (r.since_ago_ns() < 0 || r.until_ago_ns() < 0 ||
      (r.since_ago_ns() != 0 && r.until_ago_ns() >= r.since_ago_ns())) {
    Fail(rpc, absl::StrCat("accepted range ", r.ShortDebugString()));
  }
}

// What the service does before answering (agent/server/vigil_service.cc),
// then a round trip: a proto3 string with invalid UTF-8 fails to parse, so
// the client would refuse the whole answer.
template <typename Resp>
void CheckAnswer(Resp* resp, const char* rpc) {
  MakeStringsSafe(resp);
  Resp back;
  if (!back.ParseFromString(resp->SerializeAsString())) Fail(rpc, "answer does not parse back");
}

// Names as other users choose them.
constexpr const char* kNames[] = {"nginx",     "a b (c)", "\x1b[31mred",     "\xff\xfe bad utf8",
                                  "tab\there", "",        "0123456789abcdef"};

void CopyName(char* dst, size_t n, const char* src) { strncpy(dst, src, n); }

struct Fixture {
  WindowStore store{StoreConfig{kWindow, 4}};
  Table<SyscallInterval> syscalls;
  Table<ProfileInterval> profile;
  Table<MemoryInterval> memory;
  Table<UdpDropInterval> drops;
  DropReasonTable reasons;
  std::unique_ptr<AlertStream> alerts;
  std::unique_ptr<PprofEndpoints> pprof;

  Fixture() {
    // Invalid UTF-8 in a request is refused by the parser, noisily.
    google::protobuf::SetLogHandler(nullptr);
    syscalls = store.Register<SyscallInterval>(100000);
    profile = store.Register<ProfileInterval>(100000);
    memory = store.Register<MemoryInterval>(100000);
    drops = store.Register<UdpDropInterval>(100000);
    reasons = MakeReasons();
    // Intervals over the last 5 minutes, so most ranges overlap some.
    const absl::Time now = absl::Now();
    StoreWriter w = store.writer();
    for (int i = 0; i < 30; ++i) {
      const absl::Time start = now - absl::Seconds(300 - 10 * i), end = start + absl::Seconds(10);
      w.Add(syscalls, start, end, SyscallsAt(i));
      w.Add(profile, start, end, ProfileAt(i));
      w.Add(memory, start, end, MemoryAt(i, end));
      w.Add(drops, start, end, DropsAt(i));
    }
    alerts = *AlertStream::Create(AlertsConfig{});
    for (uint64_t id = 1; id <= 3; ++id) {
      v1::SpinAlert a;
      a.set_id(id);
      a.set_kind(id == 3 ? v1::ALERT_KIND_MEMORY_GROWTH : v1::ALERT_KIND_SPIN);
      a.set_state(id == 1 ? v1::ALERT_STATE_RESOLVED : v1::ALERT_STATE_FIRING);
      a.set_pid(100 + id);
      a.set_comm(kNames[id]);
      alerts->Publish(a);
    }
    pprof = std::make_unique<PprofEndpoints>(
        [this](const v1::ProfileRequest& req) { return Profile(req); },
        [](v1::ProfileKind k) {
          return k == v1::PROFILE_KIND_CPU ? absl::OkStatus()
                                           : absl::FailedPreconditionError("faults off here");
        },
        kWindow);
  }

  static DropReasonTable MakeReasons() {
    btf* b = btf__new_empty();
    const int id = btf__add_enum(b, "skb_drop_reason", 4);
    const char* names[] = {"SKB_NOT_DROPPED_YET",
                           "SKB_CONSUMED",
                           "SKB_DROP_REASON_NOT_SPECIFIED",
                           "SKB_DROP_REASON_NO_SOCKET",
                           "SKB_DROP_REASON_SOCKET_RCVBUFF",
                           "SKB_DROP_REASON_UDP_CSUM",
                           "SKB_DROP_REASON_MAX"};
    for (int i = 0; i < 7; ++i) btf__add_enum_value(b, names[i], i);
    absl::StatusOr<DropReasonTable> t = id > 0 ? DropReasonTable::FromBtf(b) : DropReasonTable();
    btf__free(b);
    if (!t.ok()) Fail("reasons", t.status().ToString());
    return *std::move(t);
  }

  static SyscallInterval SyscallsAt(int i) {
    SyscallInterval iv;
    for (uint32_t t = 0; t < 6; ++t) {
      syscall_key k = {};
      k.tgid = 100 + t / 2;
      k.tid = 100 + t;
      k.nr = (i * 7 + t * 13) % 340 + (t == 5 ? 1000 : 0);  // one number past the table
      syscall_stats s = {};
      s.calls = 1 + i * t;
      s.errors = t % 3 == 0 ? s.calls / 2 : 0;
      s.total_ns = 1000 * s.calls;
      s.max_ns = UINT64_MAX - t;  // extremes must not overflow a sum's rank
      s.hist[t % VIGIL_SYSCALL_HIST_BUCKETS] = s.calls;
      s.hist[VIGIL_SYSCALL_HIST_BUCKETS - 1] = 1;
      CopyName(s.comm, sizeof(s.comm), kNames[t % 7]);
      CopyName(s.pcomm, sizeof(s.pcomm), kNames[(t / 2) % 7]);
      iv.Append(k, s);
    }
    iv.loss.map_full = i;
    return iv;
  }

  static ProfileInterval ProfileAt(int i) {
    ProfileInterval iv;
    auto frame = [](const char* name, const char* module, uint64_t off, bool kernel) {
      return std::make_shared<const Frame>(Frame::Of(name, module, off, kernel));
    };
    const std::vector<FramePtr> kernel = {frame("do_syscall_64", "[kernel]", 0x10, true),
                                          frame("", "[kernel]", 0xffffffff81000000, true)};
    const std::vector<FramePtr> user = {
        frame("main", "/usr/bin/x", 4, false), frame("", "/tmp/\xff\x1b.so", 0x1234, false),
        frame("\xc3(bad", "[unknown]", 0, false),
        frame("std::vector<int>::push_back", "/lib/libc.so.6", 8, false)};
    for (uint32_t t = 0; t < 6; ++t) {
      ProfileStackRecord r;
      r.tgid = 100 + t / 2;
      r.tid = 100 + t;
      r.kind = t % 2 == 0 ? PROFILE_KIND_CPU : PROFILE_KIND_FAULT;
      r.samples = 1 + i + t;
      r.truncated = t == 3;
      CopyName(r.comm, sizeof(r.comm), kNames[t % 7]);
      CopyName(r.pcomm, sizeof(r.pcomm), kNames[(t / 2) % 7]);
      std::vector<FramePtr> k(kernel.begin(), kernel.begin() + t % 3);
      std::vector<FramePtr> u(user.begin(), user.begin() + (t + i) % 5);
      iv.Append(r, k, u);
    }
    iv.loss.samples = 100;
    iv.Seal();
    return iv;
  }

  static MemoryInterval MemoryAt(int i, absl::Time end) {
    MemoryInterval iv;
    for (uint32_t p = 0; p < 5; ++p) {
      ProcMemSample s;
      s.tgid = 100 + p;
      s.ppid = 1;
      s.start_ns = p == 4 ? i : 7;  // pid 104 is reused every interval
      s.cgroup_id = p % 2 + 1;
      s.anon = 1000 * p + i * p * p;
      s.file = p == 3 ? UINT32_MAX : 10;
      CopyName(s.comm, sizeof(s.comm), kNames[p]);
      iv.procs.push_back(s);
    }
    iv.cgroups.push_back({1, "/", 1 << 30, 0, 0, 3});
    iv.cgroups.push_back({2, "/system.slice/\x1b[0m.service", 5u << 20, 8u << 20, 0, 2});
    if (i % 10 == 0) {
      iv.ooms.push_back({end, 104, "victim\n", "/x", 1 << 20, true, 103, kNames[3]});
    }
    iv.host_total_bytes = 8ull << 30;
    iv.host_available_bytes = 4ull << 30;
    return iv;
  }

  static UdpDropInterval DropsAt(int i) {
    UdpDropInterval iv;
    for (uint32_t d = 0; d < 5; ++d) {
      UdpDropRecord r;
      r.key.netns = 4026531840u + d % 2;
      r.key.reason = d == 4 ? UDPDROP_REASON_UNKNOWN : d + 2;
      r.key.port = d == 0 ? 0 : 53 * d;
      r.key.family = d % 2 == 0 ? UDPDROP_AF_INET : UDPDROP_AF_INET6;
      r.key.addr[0] = 10;
      r.key.addr[15] = d;
      r.stats.count = 1 + i * d;
      r.stats.sk_ino = 1000 + d;
      r.stats.rcvbuf = 212992;
      r.owners.push_back({100 + d, kNames[d]});
      iv.records.push_back(r);
    }
    return iv;
  }

  QueryContext Context() const {
    QueryContext ctx;
    ctx.deadline = absl::Now() + absl::Seconds(1);
    return ctx;
  }

  // What ProfileCapability::QueryProfile does, for /debug/pprof's source.
  absl::StatusOr<v1::ProfileResponse> Profile(const v1::ProfileRequest& req) const {
    absl::StatusOr<ProfileQuery> q = ValidateProfileRequest(req);
    if (!q.ok()) return q.status();
    CheckRange(req.range(), "GetProfile");
    q->fault_period = 64;
    const StoreView view = store.view();
    absl::StatusOr<StoreView::Merge> m = view.BeginMerge(req.range(), Context());
    if (!m.ok()) return m.status();
    v1::ProfileResponse resp;
    ProfileMerger merger(*q);
    view.ForEach(profile, m->from, m->to, [&](const auto& iv) { merger.Add(iv.data); });
    merger.Finish(&resp);
    return resp;
  }
};

const Fixture& Get() {
  static const Fixture* f = new Fixture();
  return *f;
}

void Syscalls(const Fixture& f, absl::string_view wire) {
  v1::SyscallsRequest req;
  if (!req.ParseFromArray(wire.data(), static_cast<int>(wire.size()))) return;
  absl::StatusOr<SyscallQuery> q = ValidateSyscallsRequest(req);
  if (!q.ok()) return CheckError(q.status(), "GetSyscalls");
  CheckRange(req.range(), "GetSyscalls");
  const StoreView view = f.store.view();
  absl::StatusOr<StoreView::Merge> m = view.BeginMerge(req.range(), f.Context());
  if (!m.ok()) return CheckError(m.status(), "GetSyscalls range");
  v1::SyscallsResponse resp;
  SyscallMerger merger(*q);
  view.ForEach(
      f.syscalls, m->from, m->to, [&](const auto& iv) { merger.Add(iv.data); },
      [&](const Coverage&) { merger.Finish(&resp); });
  // With SYSCALL grouping (one group), top cuts syscalls instead.
  const bool by_syscall = q->group_by == v1::SYSCALL_GROUP_BY_SYSCALL;
  if (static_cast<uint32_t>(resp.threads_size()) > (by_syscall ? 1 : q->top)) {
    Fail("GetSyscalls", "over top");
  }
  const uint32_t per_group = by_syscall ? q->top : q->top_syscalls;
  for (const v1::ThreadSyscalls& t : resp.threads()) {
    if (per_group != 0 && static_cast<uint32_t>(t.syscalls_size()) > per_group) {
      Fail("GetSyscalls", "over top_syscalls");
    }
  }
  CheckAnswer(&resp, "GetSyscalls");
}

void Drops(const Fixture& f, absl::string_view wire) {
  v1::DropsRequest req;
  if (!req.ParseFromArray(wire.data(), static_cast<int>(wire.size()))) return;
  absl::StatusOr<DropsQuery> q = ValidateDropsRequest(req, f.reasons);
  if (!q.ok()) return CheckError(q.status(), "GetDrops");
  CheckRange(req.range(), "GetDrops");
  const StoreView view = f.store.view();
  absl::StatusOr<StoreView::Merge> m = view.BeginMerge(req.range(), f.Context());
  if (!m.ok()) return CheckError(m.status(), "GetDrops range");
  v1::DropsResponse resp;
  DropsMerger merger(*q, f.reasons);
  const Coverage c =
      view.ForEach(f.drops, m->from, m->to, [&](const auto& iv) { merger.Add(iv.data, iv.end); });
  merger.Finish(c.Seconds(), &resp);
  if (static_cast<uint32_t>(resp.drops_size()) > q->top) Fail("GetDrops", "over top");
  CheckAnswer(&resp, "GetDrops");
}

void Hot(const Fixture& f, absl::string_view wire) {
  v1::HotRequest req;
  if (!req.ParseFromArray(wire.data(), static_cast<int>(wire.size()))) return;
  absl::StatusOr<ProfileQuery> q = ValidateHotRequest(req);
  if (!q.ok()) return CheckError(q.status(), "GetHot");
  CheckRange(req.range(), "GetHot");
  q->fault_period = 64;
  const StoreView view = f.store.view();
  absl::StatusOr<StoreView::Merge> m = view.BeginMerge(req.range(), f.Context());
  if (!m.ok()) return CheckError(m.status(), "GetHot range");
  v1::HotResponse resp;
  HotMerger merger(*q);
  view.ForEach(
      f.profile, m->from, m->to, [&](const auto& iv) { merger.Add(iv.data); },
      [&](const Coverage&) { merger.Finish(&resp); });
  if (static_cast<uint32_t>(resp.functions_size()) > q->top) Fail("GetHot", "over top");
  CheckAnswer(&resp, "GetHot");
}

void Profile(const Fixture& f, absl::string_view wire) {
  v1::ProfileRequest req;
  if (!req.ParseFromArray(wire.data(), static_cast<int>(wire.size()))) return;
  absl::StatusOr<v1::ProfileResponse> resp = f.Profile(req);
  if (!resp.ok()) return CheckError(resp.status(), "GetProfile");
  for (const v1::ProfileStack& s : resp->stacks()) {
    for (uint32_t id : s.frame_ids()) {
      if (id >= static_cast<uint32_t>(resp->frames_size())) Fail("GetProfile", "frame id");
    }
  }
  CheckAnswer(&*resp, "GetProfile");
}

void Memory(const Fixture& f, absl::string_view wire) {
  v1::MemoryRequest req;
  if (!req.ParseFromArray(wire.data(), static_cast<int>(wire.size()))) return;
  absl::StatusOr<MemoryQuery> q = ValidateMemoryRequest(req);
  if (!q.ok()) return CheckError(q.status(), "GetMemory");
  CheckRange(req.range(), "GetMemory");
  const StoreView view = f.store.view();
  absl::StatusOr<StoreView::Merge> m = view.BeginMerge(req.range(), f.Context());
  if (!m.ok()) return CheckError(m.status(), "GetMemory range");
  v1::MemoryResponse resp;
  MemoryMerger merger(*q);
  view.ForEach(f.memory, m->from, m->to, [&](const auto& iv) { merger.Add(iv.data, iv.end); });
  merger.Finish(&resp);
  if (q->pid != 0) {
    // MemoryCapability::FillGrowingStacks: the process's page-fault profile.
    v1::ProfileRequest p;
    p.set_pid(q->pid);
    p.set_kind(v1::PROFILE_KIND_MEMORY);
    *p.mutable_range() = req.range();
    absl::StatusOr<v1::ProfileResponse> prof = f.Profile(p);
    if (prof.ok()) {
      FoldGrowingStacks(*prof, kGrowingStacksTop, kGrowingStackFrames,
                        resp.mutable_growing_stacks());
    }
  }
  if (static_cast<uint32_t>(resp.processes_size()) > q->top) Fail("GetMemory", "over top");
  CheckAnswer(&resp, "GetMemory");
}

void ListAlerts(const Fixture& f, absl::string_view wire) {
  v1::ListAlertsRequest req;
  if (!req.ParseFromArray(wire.data(), static_cast<int>(wire.size()))) return;
  absl::StatusOr<v1::ListAlertsResponse> resp = f.alerts->List(req);
  if (!resp.ok()) return CheckError(resp.status(), "ListAlerts");
  CheckAnswer(&*resp, "ListAlerts");
}

// "/debug/pprof/profile?seconds=30&pid=1": the path up to '?', then
// '&'-separated key=value pairs, as cpp-httplib hands them over (decoded).
void Pprof(const Fixture& f, absl::string_view url) {
  const size_t q = url.find('?');
  const std::string path(url.substr(0, q));
  HttpParams params;
  if (q != absl::string_view::npos) {
    for (absl::string_view kv : absl::StrSplit(url.substr(q + 1), '&')) {
      const size_t eq = kv.find('=');
      params.emplace(std::string(kv.substr(0, eq)),
                     eq == absl::string_view::npos ? "" : std::string(kv.substr(eq + 1)));
    }
  }
  absl::StatusOr<v1::ProfileRequest> req = f.pprof->Parse(path, params);
  if (!req.ok()) CheckError(req.status(), "pprof Parse");
  const HttpReply r = f.pprof->Serve(path, params);
  if (r.status == 200) {
    if (r.body.empty()) Fail("pprof", "empty 200");
    return;
  }
  if (r.status != 400 && r.status != 404 && r.status != 503) Fail("pprof status", r.body);
  // An error is one line (and its newline).
  if (r.body.empty() || r.body.back() != '\n' || r.body.find('\n') != r.body.size() - 1 ||
      r.body.size() > kMaxMessage + 1) {
    Fail("pprof error body not one bounded line", r.body);
  }
}

}  // namespace
}  // namespace vigil

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const vigil::Fixture& f = vigil::Get();
  const absl::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 7) {
    case 0:
      vigil::Syscalls(f, rest);
      break;
    case 1:
      vigil::Drops(f, rest);
      break;
    case 2:
      vigil::Hot(f, rest);
      break;
    case 3:
      vigil::Profile(f, rest);
      break;
    case 4:
      vigil::Memory(f, rest);
      break;
    case 5:
      vigil::ListAlerts(f, rest);
      break;
    default:
      vigil::Pprof(f, rest);
      break;
  }
  return 0;
}
