// vigil hot: the hottest functions by sampled CPU time (perf report, with
// and without children), or by sampled page faults (--kind memory), from the
// agent's always-on profiler.
#include <CLI/CLI.hpp>

#include "client/flags.h"
#include "client/profile_export.h"
#include "client/runner.h"

namespace vigil::cli {
namespace {

class HotCommand : public Command {
 public:
  HotCommand()
      : Command({"hot",
                 "hottest functions by sampled CPU time or page faults (perf report, always on)",
                 R"(usage: vigil hot [options]

The hottest functions by sampled CPU time over a range of the agent's
always-on profiler: self % (the function itself was running, perf report
--no-children) and total % (it was anywhere on the stack, --children).

--kind memory ranks them by sampled page faults instead: the code that first
touched memory, in bytes (each sampled fault stands for vigild's
--profile-fault-period faults of one 4 KiB page each). It sees anonymous and
file pages the moment they are first touched; not memory that malloc reuses
without faulting, memory already freed, or the kernel's own allocations. A
transparent huge page (2 MiB) or file fault-around (up to 16 pages) is one
fault: counted as 4 KiB.
)"}) {}

  void AddFlags(CLI::App& app) override {
    AddProfileFilter(app, &filter_);
    AddTop(app, &top_, "at most N functions (default 20, max 10000)");
  }

  absl::Status Check() override {
    if (std::string e = CheckProfileFilter(filter_); !e.empty())
      return absl::InvalidArgumentError(e);
    return absl::OkStatus();
  }

  int Run(const Invocation& inv) override {
    v1::HotRequest req;
    ApplyProfileFilter(filter_, &req);
    req.set_top(top_);
    // One table per host: sample shares do not add across hosts with
    // different CPU counts and rates.
    return RunQuery(inv, PerAgentQuery<v1::FleetHotResponse>(&v1::Vigil::Stub::GetHot,
                                                             std::move(req), FormatHot, "\n"));
  }

 private:
  ProfileFilter filter_;
  uint32_t top_ = 0;
};

}  // namespace

std::unique_ptr<Command> NewHotCommand() { return std::make_unique<HotCommand>(); }

}  // namespace vigil::cli
