// vigil drops: UDP packets the kernel dropped, by socket, process and reason.
#include <CLI/CLI.hpp>

#include "client/flags.h"
#include "client/runner.h"

namespace vigil::cli {
namespace {

class DropsCommand : public Command {
 public:
  DropsCommand()
      : Command({"drops", "UDP packets the kernel dropped: which socket, which process, why",
                 R"(usage: vigil drops [options]

Every UDP packet the kernel dropped (IPv4 and IPv6), counted per network
namespace, local address:port and kernel drop reason, with the process that
owns the socket, and the socket's receive buffer and queued bytes at the
last drop.
)"}) {}

  void AddFlags(CLI::App& app) override {
    AddSince(app, &since_);
    AddCount(app, "--port", &port_, 1, 65535, "1-65535", "only drops whose local port is N");
    // The agent knows its kernel's reason names.
    AddText(app, "--reason", &reason_, "NAME",
            "only this kernel drop reason, e.g. SOCKET_RCVBUFF, NO_SOCKET, UDP_CSUM (any case; "
            "prefix optional)");
    AddTop(app, &top_, "at most N rows (default 100, max 10000)");
    AddSwitch(app, "--explain", &explain_, "under each row, one sentence on what to do about it");
    AddWatchFlags(app, &watch_);
  }

  int Run(const Invocation& inv) override {
    v1::DropsRequest req;
    req.mutable_range()->set_since_ago_ns(absl::ToInt64Nanoseconds(since_));
    req.set_port(port_);
    req.set_reason(reason_);
    req.set_top(top_);
    const bool explain = explain_;
    return RunQuery(inv,
                    PerAgentQuery<v1::FleetDropsResponse>(
                        &v1::Vigil::Stub::GetDrops, std::move(req),
                        [explain](const v1::DropsResponse& r) { return FormatDrops(r, explain); }),
                    watch_);
  }

 private:
  absl::Duration since_ = absl::ZeroDuration();
  uint32_t port_ = 0, top_ = 0;
  std::string reason_;
  bool explain_ = false;
  WatchFlags watch_;
};

}  // namespace

std::unique_ptr<Command> NewDropsCommand() { return std::make_unique<DropsCommand>(); }

}  // namespace vigil::cli
