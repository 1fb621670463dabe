// vigil status: is the agent healthy, and what could it not record?
#include "client/runner.h"

namespace vigil::cli {
namespace {

class StatusCommand : public Command {
 public:
  const char* Name() const override { return "status"; }
  const char* Summary() const override {
    return "agent health: capabilities, losses, memory and CPU";
  }
  const char* Description() const override {
    return "usage: vigil status [options]\n\nAgent health: version, capabilities and why any is "
           "off,\n"
           "what could not be recorded, memory and CPU.\n";
  }
  void AddFlags(CLI::App&) override {}
  int Run(const Invocation& inv) override {
    Query<v1::StatusResponse> q;
    q.call = [](v1::Vigil::Stub& stub, grpc::ClientContext* ctx, v1::StatusResponse* r) {
      return stub.GetStatus(ctx, v1::StatusRequest(), r);
    };
    q.table = FormatStatus;
    q.fleet = PerAgentBlocks<v1::FleetStatusResponse>(q.table);
    return RunQuery(inv, q);
  }
};

}  // namespace

std::unique_ptr<Command> NewStatusCommand() { return std::make_unique<StatusCommand>(); }

}  // namespace vigil::cli
