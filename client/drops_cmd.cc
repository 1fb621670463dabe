// vigil drops: UDP packets the kernel dropped, by socket, process and reason.
#include <CLI/CLI.hpp>

#include "client/flags.h"
#include "client/runner.h"

namespace vigil::cli {
namespace {

class DropsCommand : public Command {
 public:
  const char* Name() const override { return "drops"; }
  const char* Summary() const override {
    return "UDP packets the kernel dropped: which socket, which process, why";
  }
  const char* Description() const override {
    return R"(usage: vigil drops [options]

Every UDP packet the kernel dropped (IPv4 and IPv6), counted per network
namespace, local address:port and kernel drop reason, with the process that
owns the socket, and the socket's receive buffer and queued bytes at the
last drop.
)";
  }

  void AddFlags(CLI::App& app) override {
    AddDuration(app, "--since", &since_, absl::Nanoseconds(1), absl::Hours(24 * 30),
                "start of the range, that long ago (default: whole window)");
    AddCount(app, "--port", &port_, 1, 65535, "1-65535", "only drops whose local port is N");
    // The agent knows its kernel's reason names.
    AddText(app, "--reason", &reason_, "NAME",
            "only this kernel drop reason, e.g. SOCKET_RCVBUFF, NO_SOCKET, UDP_CSUM (any case; "
            "prefix optional)");
    AddCount(app, "--top", &top_, 1, 10000, "1-10000", "at most N rows (default 100, max 10000)");
    AddSwitch(app, "--explain", &explain_, "under each row, one sentence on what to do about it");
    AddWatchFlags(app, &watch_);
  }

  int Run(const Invocation& inv) override {
    v1::DropsRequest req;
    req.mutable_range()->set_since_ago_ns(absl::ToInt64Nanoseconds(since_));
    req.set_port(port_);
    req.set_reason(reason_);
    req.set_top(top_);
    Query<v1::DropsResponse> q;
    q.call = [&](v1::Vigil::Stub& stub, grpc::ClientContext* ctx, v1::DropsResponse* r) {
      return stub.GetDrops(ctx, req, r);
    };
    q.table = [this](const v1::DropsResponse& r) { return FormatDrops(r, explain_); };
    q.fleet = PerAgentBlocks<v1::FleetDropsResponse>(q.table);
    return RunQuery(inv, q, watch_);
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
