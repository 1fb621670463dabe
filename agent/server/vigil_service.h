// gRPC vigil.v1.Vigil: validates requests and reads the Agent's store.
#pragma once

#include "agent/agent.h"
#include "vigil/v1/vigil.grpc.pb.h"

namespace vigil {

class VigilService final : public v1::Vigil::Service {
 public:
  explicit VigilService(const Agent* agent) : agent_(agent) {}

  grpc::Status GetSyscalls(grpc::ServerContext* ctx, const v1::SyscallsRequest* req,
                           v1::SyscallsResponse* resp) override;
  grpc::Status GetDrops(grpc::ServerContext* ctx, const v1::DropsRequest* req,
                        v1::DropsResponse* resp) override;
  grpc::Status GetStatus(grpc::ServerContext* ctx, const v1::StatusRequest* req,
                         v1::StatusResponse* resp) override;
  grpc::Status GetHot(grpc::ServerContext* ctx, const v1::HotRequest* req,
                      v1::HotResponse* resp) override;
  grpc::Status GetProfile(grpc::ServerContext* ctx, const v1::ProfileRequest* req,
                          v1::ProfileResponse* resp) override;
  grpc::Status GetMemory(grpc::ServerContext* ctx, const v1::MemoryRequest* req,
                         v1::MemoryResponse* resp) override;
  grpc::Status GetTop(grpc::ServerContext* ctx, const v1::TopRequest* req,
                      v1::TopResponse* resp) override;
  grpc::Status ListAlerts(grpc::ServerContext* ctx, const v1::ListAlertsRequest* req,
                          v1::ListAlertsResponse* resp) override;
  // Streams until the client cancels, the agent shuts down, or the client
  // reads too slowly (its bounded queue overflowed: ABORTED).
  grpc::Status WatchAlerts(grpc::ServerContext* ctx, const v1::WatchAlertsRequest* req,
                           grpc::ServerWriter<v1::SpinAlert>* writer) override;
  // On-demand sessions: stream until the session ends (see TraceCapability
  // and ProbeCapability); FAILED_PRECONDITION when not allowed here.
  grpc::Status Trace(grpc::ServerContext* ctx, const v1::TraceRequest* req,
                     grpc::ServerWriter<v1::TraceMessage>* writer) override;
  grpc::Status Probe(grpc::ServerContext* ctx, const v1::ProbeRequest* req,
                     grpc::ServerWriter<v1::ProbeReport>* writer) override;

 private:
  template <typename Resp>
  grpc::Status Deliver(const char* method, absl::StatusOr<Resp> r, Resp* out) const;
  template <typename Resp>
  grpc::Status Answer(const char* method, absl::StatusOr<Resp> r, Resp* out) const;
  template <typename Cap, typename Req, typename Resp>
  using QueryFn = absl::StatusOr<Resp> (Cap::*)(const StoreView&, const QueryContext&,
                                                const Req&) const;
  template <typename Cap, typename Req, typename Resp>
  grpc::Status Query(const char* method, QueryFn<Cap, Req, Resp> query, grpc::ServerContext* ctx,
                     const Req& req, Resp* out) const;
  // FAILED_PRECONDITION naming the capability and why it is off.
  absl::Status Off(const char* capability) const;

  template <typename Cap, typename Req, typename Msg>
  grpc::Status Session(const char* method, grpc::ServerContext* ctx, const Req& req,
                       grpc::ServerWriter<Msg>* writer) const;

  const Agent* agent_;
};

// absl::Status -> grpc::Status with the same code and message.
grpc::Status ToGrpc(const absl::Status& s);

}  // namespace vigil
