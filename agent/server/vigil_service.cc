#include "agent/server/vigil_service.h"

#include <string>

namespace vigil {

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  // absl and gRPC share the canonical code numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

grpc::Status VigilService::GetSyscalls(grpc::ServerContext* ctx, const v1::SyscallsRequest* req,
                                       v1::SyscallsResponse* resp) {
  absl::StatusOr<v1::SyscallsResponse> r = agent_->QuerySyscalls(*req);
  agent_->RecordRpc("GetSyscalls", static_cast<int>(r.status().code()));
  if (!r.ok()) return ToGrpc(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status VigilService::GetDrops(grpc::ServerContext* ctx, const v1::DropsRequest* req,
                                    v1::DropsResponse* resp) {
  absl::StatusOr<v1::DropsResponse> r = agent_->QueryDrops(*req);
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
  absl::StatusOr<v1::HotResponse> r = agent_->QueryHot(*req);
  if (!r.ok()) return ToGrpc(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status VigilService::GetProfile(grpc::ServerContext* ctx, const v1::ProfileRequest* req,
                                      v1::ProfileResponse* resp) {
  absl::StatusOr<v1::ProfileResponse> r = agent_->QueryProfile(*req);
  if (!r.ok()) return ToGrpc(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status VigilService::ListAlerts(grpc::ServerContext* ctx, const v1::ListAlertsRequest* req,
                                      v1::ListAlertsResponse* resp) {
  absl::StatusOr<v1::ListAlertsResponse> r = agent_->ListAlerts(*req);
  if (!r.ok()) return ToGrpc(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status VigilService::WatchAlerts(grpc::ServerContext* ctx, const v1::WatchAlertsRequest* req,
                                       grpc::ServerWriter<v1::SpinAlert>* writer) {
  absl::StatusOr<std::shared_ptr<AlertSubscription>> sub = agent_->WatchAlerts(req->include_active());
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
  agent_->EndWatch(*sub);
  return result;
}

}  // namespace vigil
