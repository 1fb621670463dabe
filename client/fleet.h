// Querying one agent or many: the --agent/--agents-file list, concurrent
// calls with a deadline each, and per-agent outcomes. A dead agent is
// reported without failing the others.
#pragma once

#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "client/agent_client.h"

namespace vigil::cli {

inline constexpr size_t kMaxAgents = 1000;
inline constexpr size_t kMaxInFlight = 32;

// The agents to query: every --agent, then those of --agents-file (at most
// 4 MiB), duplicates dropped, TLS options shared. None given: the local
// default socket. The file is either one address a line ('#' comments,
// blank lines skipped) or, when its first non-blank character is '[',
// Prometheus file_sd JSON: each group's targets' hosts with the port of its
// "vigil_grpc_port" label. Any malformed file is one line of error.
absl::StatusOr<std::vector<ConnectOptions>> ResolveAgents(const std::vector<std::string>& agents,
                                                          const std::string& agents_file,
                                                          const ConnectOptions& shared);

template <typename Resp>
struct AgentAnswer {
  ConnectOptions conn;
  absl::Status status;  // ok, or why this agent did not answer
  Resp resp;
};

// Calls `call(stub, ctx, &resp) -> grpc::Status` on every agent, at most
// kMaxInFlight at a time, each with its own deadline. Order follows `agents`.
template <typename Resp, typename Call>
std::vector<AgentAnswer<Resp>> QueryAll(const std::vector<ConnectOptions>& agents, Call call) {
  std::vector<AgentAnswer<Resp>> out(agents.size());
  for (size_t start = 0; start < agents.size(); start += kMaxInFlight) {
    std::vector<std::thread> wave;
    for (size_t i = start; i < agents.size() && i < start + kMaxInFlight; ++i) {
      wave.emplace_back([&, i] {
        out[i].conn = agents[i];
        absl::StatusOr<std::unique_ptr<v1::Vigil::Stub>> stub = Connect(agents[i]);
        if (!stub.ok()) {
          out[i].status = stub.status();
          return;
        }
        grpc::ClientContext ctx;
        SetDeadline(&ctx, agents[i]);
        out[i].status = FromGrpc(call(**stub, &ctx, &out[i].resp), agents[i]);
      });
    }
    for (auto& t : wave) t.join();
  }
  return out;
}

}  // namespace vigil::cli
