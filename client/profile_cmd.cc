// vigil profile / vigil flamegraph: export the agent's sampled stacks as
// pprof, folded stacks, or a self-contained interactive flame graph.
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/flags.h"
#include "client/profile_export.h"
#include "client/runner.h"

namespace vigil::cli {
namespace {

constexpr CommandText kFlamegraphText = {"flamegraph",
                                         "write an interactive flame graph (.svg or .html)",
                                         R"(usage: vigil flamegraph -o FILE.svg|FILE.html [options]

Writes a self-contained interactive flame graph of a range of the agent's
always-on profiler: hover a frame for its name, module and share; click to
zoom; click the bottom frame to zoom out. --kind memory draws sampled page
faults (where memory is first touched, faults x 4 KiB) instead of CPU time.
)"};

constexpr CommandText kProfileText = {
    "profile", "export sampled stacks: pprof or folded",
    R"(usage: vigil profile --format pprof|folded -o FILE [options]

Exports every sampled stack in a range of the agent's always-on profiler.
  pprof    gzipped profile.proto (go tool pprof -top FILE)
  folded   one line per stack, "root;...;leaf count" (flamegraph.pl input)

--kind memory exports sampled page faults (where memory is first touched)
instead of CPU time: pprof sample types faults/count and fault_bytes/bytes
(faults x 4 KiB); folded counts stay samples, each vigild's
--profile-fault-period faults.
)"};

class ProfileCommand : public OneAgentCommand {
 public:
  explicit ProfileCommand(bool flamegraph)
      // One file describes one host's profile.
      : OneAgentCommand(flamegraph ? kFlamegraphText : kProfileText,
                        "exports take exactly one --agent"),
        flamegraph_(flamegraph) {}

  void AddFlags(CLI::App& app) override {
    AddProfileFilter(app, &filter_);
    if (!flamegraph_) {
      AddChoice(
          app, "--format", {"pprof", "folded"},
          [this](size_t i) { format_ = i == 0 ? "pprof" : "folded"; }, "pprof or folded",
          "pprof or folded (required)");
    }
    AddText(app, "-o,--output", &output_, "FILE",
            flamegraph_ ? "FILE.svg or FILE.html (required)"
                        : "where to write (required; - for stdout, folded only)");
  }

  absl::Status Check() override {
    if (std::string e = CheckProfileFilter(filter_); !e.empty())
      return absl::InvalidArgumentError(e);
    if (!flamegraph_ && format_.empty())
      return absl::InvalidArgumentError("--format is required (pprof or folded)");
    if (output_.empty()) return absl::InvalidArgumentError("-o FILE is required");
    if (flamegraph_ && !absl::EndsWith(output_, ".svg") && !absl::EndsWith(output_, ".html")) {
      return absl::InvalidArgumentError(
          absl::StrCat("-o \"", output_, "\": expected a name ending in .svg or .html"));
    }
    if (output_ == "-" && format_ != "folded") {
      return absl::InvalidArgumentError("-o - (stdout) works only with --format folded");
    }
    return absl::OkStatus();
  }

  int RunOn(const Invocation& inv, v1::Vigil::Stub& agent) override {
    v1::ProfileRequest req;
    ApplyProfileFilter(filter_, &req);
    grpc::ClientContext ctx;
    SetDeadline(&ctx, inv.agents.front());
    v1::ProfileResponse resp;
    if (absl::Status s = FromGrpc(agent.GetProfile(&ctx, req, &resp), inv.agents.front());
        !s.ok()) {
      return AgentError(inv, s);
    }

    std::string data;
    if (flamegraph_) {
      std::string title = "vigil flamegraph";
      if (filter_.pid != 0) absl::StrAppend(&title, " --pid ", filter_.pid);
      if (!filter_.comm_regex.empty()) absl::StrAppend(&title, " --comm ", filter_.comm_regex);
      if (resp.kind() == v1::PROFILE_KIND_MEMORY) {
        absl::StrAppend(&title, " --kind memory (", resp.samples(), " page-fault samples, ",
                        HumanBytes(resp.fault_bytes()), " newly touched)");
      } else {
        absl::StrAppend(&title, " (", resp.samples(), " samples)");
      }
      data = ToFlameGraph(resp, title, absl::EndsWith(output_, ".svg"));
    } else if (format_ == "folded") {
      data = ToFolded(resp);
    } else {
      absl::StatusOr<std::string> gz = Gzip(ToPprof(resp).SerializeAsString());
      if (!gz.ok()) return Failure(gz.status().message());
      data = *std::move(gz);
    }
    if (output_ == "-") {
      fwrite(data.data(), 1, data.size(), stdout);
      return kExitOk;
    }
    std::ofstream f(output_, std::ios::binary | std::ios::trunc);
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
    f.close();
    if (!f) return Failure(absl::StrCat("writing ", output_, ": ", strerror(errno)));
    fprintf(stderr, "vigil %s: wrote %s (%llu samples, %d stacks)\n", Name(), output_.c_str(),
            static_cast<unsigned long long>(resp.samples()), resp.stacks_size());
    return kExitOk;
  }

 private:
  const bool flamegraph_;
  ProfileFilter filter_;
  std::string format_, output_;
};

}  // namespace

std::unique_ptr<Command> NewProfileCommand(bool flamegraph) {
  return std::make_unique<ProfileCommand>(flamegraph);
}

}  // namespace vigil::cli
