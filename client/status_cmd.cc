// vigil status: is the agent healthy, and what could it not record?
#include "client/runner.h"

namespace vigil::cli {
namespace {

class StatusCommand : public Command {
 public:
  StatusCommand()
      : Command(
            {"status", "agent health: capabilities, losses, memory and CPU",
             "usage: vigil status [options]\n\nAgent health: version, capabilities and why any is "
             "off,\n"
             "what could not be recorded, memory and CPU.\n"}) {}
  void AddFlags(CLI::App&) override {}
  int Run(const Invocation& inv) override {
    return RunQuery(inv, PerAgentQuery<v1::FleetStatusResponse>(&v1::Vigil::Stub::GetStatus,
                                                                v1::StatusRequest(), FormatStatus));
  }
};

}  // namespace

std::unique_ptr<Command> NewStatusCommand() { return std::make_unique<StatusCommand>(); }

}  // namespace vigil::cli
