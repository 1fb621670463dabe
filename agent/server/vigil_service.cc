#include "agent/server/vigil_service.h"

#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "agent/cpu/cpu_capability.h"
#include "agent/memory/memory_capability.h"
#include "agent/probe/probe_capability.h"
#include "agent/profile/profile_capability.h"
#include "agent/spin/spin_capability.h"
#include "agent/syscalls/syscalls_capability.h"
#include "agent/top/top_query.h"
#include "agent/trace/trace_capability.h"
#include "agent/udpdrops/udpdrops_capability.h"
#include "common/safe_proto.h"

namespace vigil {
namespace {

// The client's deadline and cancellation, for waits inside a query.
QueryContext ContextOf(grpc::ServerContext* ctx) {
  QueryContext q;
  const auto deadline = ctx->deadline();
  if (deadline != std::chrono::system_clock::time_point::max()) {
    q.deadline = absl::FromChrono(deadline);
  }
  q.cancelled = [ctx] { return ctx->IsCancelled(); };
  return q;
}

// Who opened a session, for the journal: the peer address and, over mutual
// TLS, the client certificate's subject.
SessionPeer PeerOf(const grpc::ServerContext* ctx) {
  SessionPeer who;
  who.peer = ctx->peer();
  if (auto auth = ctx->auth_context(); auth != nullptr && auth->IsPeerAuthenticated()) {
    for (const char* property : {"x509_subject", "x509_common_name"}) {
      const std::vector<grpc::string_ref> v = auth->FindPropertyValues(property);
      if (!v.empty()) {
        who.subject.assign(v.front().data(), v.front().size());
        break;
      }
    }
  }
  return who;
}

}  // namespace

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  // absl and gRPC share the canonical code numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

// Every unary RPC ends here: counted with its real code (for
// vigil_grpc_requests_total), then handed to gRPC. `r` is already safe to
// print (MakeStringsSafe).
template <typename Resp>
grpc::Status VigilService::Deliver(const char* method, absl::StatusOr<Resp> r, Resp* out) const {
  agent_->RecordRpc(method, static_cast<int>(r.status().code()));
  if (!r.ok()) return ToGrpc(r.status());
  *out = *std::move(r);
  return grpc::Status::OK;
}

template <typename Resp>
grpc::Status VigilService::Answer(const char* method, absl::StatusOr<Resp> r, Resp* out) const {
  // Names other users chose must not make the response unparseable.
  if (r.ok()) MakeStringsSafe(&*r);
  return Deliver(method, std::move(r), out);
}

absl::Status VigilService::Off(const char* capability) const {
  const std::string why = agent_->CapabilityReason(capability);
  return absl::FailedPreconditionError(absl::StrCat(
      "the ", capability, " capability is off on this agent", why.empty() ? "" : ": ", why));
}

// A query RPC answered from the store by one capability's `query`, or
// FAILED_PRECONDITION when that capability is off here. Identical requests
// over the same stored intervals share one merge (StoreView::Shared).
template <typename Cap, typename Req, typename Resp>
grpc::Status VigilService::Query(const char* method, QueryFn<Cap, Req, Resp> query,
                                 grpc::ServerContext* ctx, const Req& req, Resp* out) const {
  const Cap* cap = agent_->Get<Cap>();
  if (cap == nullptr) return Deliver(method, absl::StatusOr<Resp>(Off(Cap::kName)), out);
  const absl::Time began = absl::Now();
  const StoreView store = agent_->store();
  const QueryContext qctx = ContextOf(ctx);
  // The method and the request's bytes name the query; the answer kept is
  // the one every caller receives, so it is made safe to print once.
  absl::StatusOr<Resp> r = store.Shared<Resp>(absl::StrCat(method, ":", req.SerializeAsString()),
                                              req.range(), qctx, [&]() -> absl::StatusOr<Resp> {
                                                absl::StatusOr<Resp> a =
                                                    (cap->*query)(store, qctx, req);
                                                if (a.ok()) MakeStringsSafe(&*a);
                                                return a;
                                              });
  // A shared answer carried its merge's time: each caller is told its own.
  if (r.ok()) r->set_query_ns(absl::ToInt64Nanoseconds(absl::Now() - began));
  return Deliver(method, std::move(r), out);
}

// The query RPCs, each answered by one capability's query.
#define VIGIL_QUERY_RPC(Method, Name, query)                                                \
  grpc::Status VigilService::Method(grpc::ServerContext* ctx, const v1::Name##Request* req, \
                                    v1::Name##Response* resp) {                             \
    return Query(#Method, &query, ctx, *req, resp);                                         \
  }
VIGIL_QUERY_RPC(GetSyscalls, Syscalls, SyscallsCapability::Query)
VIGIL_QUERY_RPC(GetDrops, Drops, UdpDropsCapability::Query)
VIGIL_QUERY_RPC(GetMemory, Memory, MemoryCapability::Query)
VIGIL_QUERY_RPC(GetHot, Hot, ProfileCapability::QueryHot)
VIGIL_QUERY_RPC(GetProfile, Profile, ProfileCapability::QueryProfile)
#undef VIGIL_QUERY_RPC

grpc::Status VigilService::GetStatus(grpc::ServerContext*, const v1::StatusRequest*,
                                     v1::StatusResponse* resp) {
  return Answer("GetStatus", absl::StatusOr<v1::StatusResponse>(agent_->Status()), resp);
}

grpc::Status VigilService::GetTop(grpc::ServerContext* ctx, const v1::TopRequest* req,
                                  v1::TopResponse* resp) {
  TopSources src;
  src.cpu = agent_->Get<CpuCapability>();
  src.profile = agent_->Get<ProfileCapability>();
  src.memory = agent_->Get<MemoryCapability>();
  src.syscalls = agent_->Get<SyscallsCapability>();
  src.udpdrops = agent_->Get<UdpDropsCapability>();
  src.alerts = &agent_->alerts();
  src.spin_on = agent_->Get<SpinCapability>() != nullptr;
  src.off_reason = [this](const std::string& name) { return agent_->CapabilityReason(name); };
  src.hostname = agent_->hostname();
  src.window = agent_->config().window;
  src.interval = agent_->config().interval;
  src.agent_pid = static_cast<uint32_t>(getpid());
  src.agent_rss_bytes = agent_->RssBytes();
  src.losses = agent_->AllLosses();
  return Answer("GetTop", QueryTop(src, agent_->store(), ContextOf(ctx), *req), resp);
}

grpc::Status VigilService::ListAlerts(grpc::ServerContext*, const v1::ListAlertsRequest* req,
                                      v1::ListAlertsResponse* resp) {
  absl::StatusOr<v1::ListAlertsResponse> r = agent_->alerts().List(*req);
  if (r.ok()) {
    if (const SpinCapability* spin = agent_->Get<SpinCapability>()) {
      r->set_tracking_overflow(spin->tracking_overflow());
    }
  }
  return Answer("ListAlerts", std::move(r), resp);
}

grpc::Status VigilService::WatchAlerts(grpc::ServerContext* ctx, const v1::WatchAlertsRequest* req,
                                       grpc::ServerWriter<v1::SpinAlert>* writer) {
  AlertStream& alerts = agent_->alerts();
  absl::StatusOr<std::shared_ptr<AlertSubscription>> sub = alerts.Watch(req->include_active());
  if (!sub.ok()) {
    agent_->RecordRpc("WatchAlerts", static_cast<int>(sub.status().code()));
    return ToGrpc(sub.status());
  }
  grpc::Status result = grpc::Status::OK;
  for (;;) {
    if (ctx->IsCancelled()) break;
    v1::SpinAlert a;
    if ((*sub)->Next(absl::Milliseconds(200), &a)) {
      if (!writer->Write(a)) break;  // the client went away
      continue;
    }
    if ((*sub)->closed()) {
      result =
          grpc::Status(grpc::StatusCode::ABORTED,
                       "alert stream ended: the agent is stopping or this client read too slowly");
      break;
    }
  }
  alerts.EndWatch(*sub);
  agent_->RecordRpc("WatchAlerts", static_cast<int>(result.error_code()));
  return result;
}

// A session RPC: the capability streams through the writer (each message
// made safe like every answer) until the session ends.
template <typename Cap, typename Req, typename Msg>
grpc::Status VigilService::Session(const char* method, grpc::ServerContext* ctx, const Req& req,
                                   grpc::ServerWriter<Msg>* writer) const {
  const Cap* cap = agent_->Get<Cap>();
  absl::Status s;
  if (cap == nullptr) {
    s = Off(Cap::kName);
  } else {
    SessionSink<Msg> sink;
    sink.write = [writer](const Msg& m) {
      Msg safe = m;
      MakeStringsSafe(&safe);
      return writer->Write(safe);
    };
    sink.cancelled = [ctx] { return ctx->IsCancelled(); };
    s = cap->Run(PeerOf(ctx), req, sink);
  }
  agent_->RecordRpc(method, static_cast<int>(s.code()));
  return ToGrpc(s);
}

grpc::Status VigilService::Trace(grpc::ServerContext* ctx, const v1::TraceRequest* req,
                                 grpc::ServerWriter<v1::TraceMessage>* writer) {
  return Session<TraceCapability>("Trace", ctx, *req, writer);
}

grpc::Status VigilService::Probe(grpc::ServerContext* ctx, const v1::ProbeRequest* req,
                                 grpc::ServerWriter<v1::ProbeReport>* writer) {
  return Session<ProbeCapability>("Probe", ctx, *req, writer);
}

}  // namespace vigil
