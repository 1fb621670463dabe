#include "agent/server/vigil_service.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

#include "agent/profile/profile_capability.h"
#include "agent/spin/spin_capability.h"
#include "agent/syscalls/syscalls_capability.h"
#include "agent/udpdrops/udpdrops_capability.h"

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

absl::Status Off(const char* what) {
  return absl::FailedPreconditionError(
      absl::StrCat(what, " off on this agent (see vigil status)"));
}

}  // namespace

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  // absl and gRPC share the canonical code numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

grpc::Status VigilService::GetSyscalls(grpc::ServerContext* ctx, const v1::SyscallsRequest* req,
                                       v1::SyscallsResponse* resp) {
  const SyscallsCapability* cap = agent_->syscalls();
  absl::StatusOr<v1::SyscallsResponse> r =
      cap ? cap->Query(agent_->store(), ContextOf(ctx), *req) : Off("the syscalls capability is");
  agent_->RecordRpc("GetSyscalls", static_cast<int>(r.status().code()));
  if (!r.ok()) return ToGrpc(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status VigilService::GetDrops(grpc::ServerContext* ctx, const v1::DropsRequest* req,
                                    v1::DropsResponse* resp) {
  const UdpDropsCapability* cap = agent_->udpdrops();
  absl::StatusOr<v1::DropsResponse> r =
      cap ? cap->Query(agent_->store(), ContextOf(ctx), *req) : Off("the udpdrops capability is");
  if (!r.ok()) return ToGrpc(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status VigilService::GetStatus(grpc::ServerContext* ctx, const v1::StatusRequest* req,
                                     v1::StatusResponse* resp) {
  *resp = agent_->Status();
  agent_->RecordRpc("GetStatus", 0);
  return grpc::Status::OK;
}

grpc::Status VigilService::GetHot(grpc::ServerContext* ctx, const v1::HotRequest* req,
                                  v1::HotResponse* resp) {
  const ProfileCapability* cap = agent_->profile();
  absl::StatusOr<v1::HotResponse> r =
      cap ? cap->QueryHot(agent_->store(), ContextOf(ctx), *req) : Off("the profiler is");
  if (!r.ok()) return ToGrpc(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status VigilService::GetProfile(grpc::ServerContext* ctx, const v1::ProfileRequest* req,
                                      v1::ProfileResponse* resp) {
  const ProfileCapability* cap = agent_->profile();
  absl::StatusOr<v1::ProfileResponse> r =
      cap ? cap->QueryProfile(agent_->store(), ContextOf(ctx), *req) : Off("the profiler is");
  if (!r.ok()) return ToGrpc(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status VigilService::ListAlerts(grpc::ServerContext* ctx, const v1::ListAlertsRequest* req,
                                      v1::ListAlertsResponse* resp) {
  const SpinCapability* cap = agent_->spin();
  absl::StatusOr<v1::ListAlertsResponse> r =
      cap ? cap->ListAlerts(*req) : Off("spin alerts are");
  if (!r.ok()) return ToGrpc(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status VigilService::WatchAlerts(grpc::ServerContext* ctx, const v1::WatchAlertsRequest* req,
                                       grpc::ServerWriter<v1::SpinAlert>* writer) {
  const SpinCapability* cap = agent_->spin();
  if (cap == nullptr) return ToGrpc(Off("spin alerts are"));
  absl::StatusOr<std::shared_ptr<AlertSubscription>> sub = cap->WatchAlerts(req->include_active());
  if (!sub.ok()) return ToGrpc(sub.status());
  grpc::Status result = grpc::Status::OK;
  for (;;) {
    if (ctx->IsCancelled()) break;
    v1::SpinAlert a;
    if ((*sub)->Next(absl::Milliseconds(200), &a)) {
      if (!writer->Write(a)) break;  // the client went away
      continue;
    }
    if ((*sub)->closed()) {
      result = grpc::Status(grpc::StatusCode::ABORTED,
                            "alert stream ended: the agent is stopping or this client read too slowly");
      break;
    }
  }
  cap->EndWatch(*sub);
  return result;
}

}  // namespace vigil
