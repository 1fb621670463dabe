// gRPC vigil.v1.Vigil: validates requests and reads the Agent's store.
#pragma once

#include "agent/agent.h"
#include "vigil/v1/vigil.grpc.pb.h"

namespace vigil {

class VigilService final : public v1::Vigil::Service {
 public:
  explicit VigilService(const Agent* agent) : agent_(agent) {}

// The unary RPCs: Method(ctx, const v1::NameRequest*, v1::NameResponse*).
#define VIGIL_UNARY_RPC(Method, Name)                                         \
  grpc::Status Method(grpc::ServerContext* ctx, const v1::Name##Request* req, \
                      v1::Name##Response* resp) override
  // Answered from the store by one capability each (vigil_service.cc).
  VIGIL_UNARY_RPC(GetSyscalls, Syscalls);
  VIGIL_UNARY_RPC(GetDrops, Drops);
  VIGIL_UNARY_RPC(GetMemory, Memory);
  VIGIL_UNARY_RPC(GetHot, Hot);
  VIGIL_UNARY_RPC(GetProfile, Profile);
  // The agent's own state; several capabilities' rows joined; the alerts.
  VIGIL_UNARY_RPC(GetStatus, Status);
  VIGIL_UNARY_RPC(GetTop, Top);
  VIGIL_UNARY_RPC(ListAlerts, ListAlerts);
#undef VIGIL_UNARY_RPC
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
