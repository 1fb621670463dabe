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

}  // namespace vigil
