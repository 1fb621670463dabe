// The `vigil` command line: subcommand dispatch and the flags every query
// command shares.
#pragma once

#include <getopt.h>

#include <cstdio>

#include <string>
#include <vector>

#include "client/agent_client.h"

namespace vigil::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // the agent could not answer
inline constexpr int kExitUsage = 2;   // bad flags or arguments

int Main(int argc, char** argv);

int RunSyscalls(int argc, char** argv);
int RunStatus(int argc, char** argv);
int RunDrops(int argc, char** argv);
int RunHot(int argc, char** argv);
int RunProfile(int argc, char** argv);
int RunFlamegraph(int argc, char** argv);
int RunAlerts(int argc, char** argv);

// Flags shared by the query commands.
struct CommonFlags {
  ConnectOptions conn;           // TLS and timeout, shared by all agents
  std::vector<std::string> agents;  // every --agent
  std::string agents_file;
  bool json = false;
};

// getopt_long ids for the shared flags; commands use ids from kFirstOwnFlag.
enum CommonFlagId { kAgent = 500, kAgentsFile, kCa, kCert, kKey, kInsecure, kTimeout, kJson, kHelp };
inline constexpr int kFirstOwnFlag = 600;

// The shared flags followed by `own`, terminated for getopt_long.
std::vector<option> WithCommonOptions(std::vector<option> own);

// Handles a shared flag. Returns false (with *err set) on a bad value.
bool HandleCommonFlag(int id, const char* value, CommonFlags* flags, std::string* err);

extern const char kCommonHelp[];

// The agents to query, each validated (bad address or TLS files: usage).
absl::StatusOr<std::vector<ConnectOptions>> AgentsFromFlags(const CommonFlags& flags);

// Prints "vigil: agent X: ..." for each failed agent; returns kExitFailed if
// every agent failed, else kExitOk.
template <typename Answers>
int ReportFailures(const Answers& answers) {
  size_t failed = 0;
  for (const auto& a : answers) {
    if (a.status.ok()) continue;
    ++failed;
    fprintf(stderr, "vigil: %s\n", std::string(a.status.message()).c_str());
  }
  return failed == answers.size() ? kExitFailed : kExitOk;
}

// Prints "vigil CMD: MSG (see vigil CMD --help)" and returns kExitUsage.
int UsageError(const char* cmd, const std::string& msg);
// Prints "vigil: MSG" and returns kExitFailed.
int Failure(const std::string& msg);

}  // namespace vigil::cli
