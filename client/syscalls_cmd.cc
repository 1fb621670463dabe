// vigil syscalls: the strace -c view, from the agent's window.
#include <CLI/CLI.hpp>

#include "client/flags.h"
#include "client/runner.h"

namespace vigil::cli {
namespace {

class SyscallsCommand : public Command {
 public:
  SyscallsCommand()
      : Command({"syscalls", "per-thread syscall counts, errors and latency (strace -c, always on)",
                 R"(usage: vigil syscalls [options]

Per-thread syscall accounting from the agent's in-memory window: calls,
errors, total/avg/max latency per syscall, like strace -c but always on.
)"}) {}

  void AddFlags(CLI::App& app) override {
    AddCount(app, "--pid", &pid_, 1, UINT32_MAX, "a positive integer", "only this process");
    AddCount(app, "--tid", &tid_, 1, UINT32_MAX, "a positive integer", "only this thread");
    AddRegex(app, "--comm", &comm_, "only threads whose thread or process name matches (RE2)");
    AddRange(app, &since_, &until_);
    AddTop(app, &top_, "at most N groups (default 20, max 10000)");
    AddEnum(app, "--by",
            {{"thread", v1::SYSCALL_GROUP_BY_THREAD},
             {"process", v1::SYSCALL_GROUP_BY_PROCESS},
             {"syscall", v1::SYSCALL_GROUP_BY_SYSCALL}},
            &by_, "thread, process or syscall", "thread (default), process or syscall");
    AddEnum(app, "--sort",
            {{"time", v1::SYSCALL_SORT_TIME},
             {"calls", v1::SYSCALL_SORT_CALLS},
             {"errors", v1::SYSCALL_SORT_ERRORS}},
            &sort_, "time, calls or errors",
            "rank by time (default, like strace -c), calls or errors");
    AddCount(app, "--top-syscalls", &top_syscalls_, 1, 10000, "1-10000",
             "at most N syscalls per group (default all)");
    AddWatchFlags(app, &watch_);
  }

  absl::Status Check() override {
    if (std::string e = CheckRange(since_, until_); !e.empty())
      return absl::InvalidArgumentError(e);
    return absl::OkStatus();
  }

  int Run(const Invocation& inv) override {
    v1::SyscallsRequest req;
    req.set_pid(pid_);
    req.set_tid(tid_);
    req.set_comm_regex(comm_);
    req.set_top(top_);
    req.set_top_syscalls(top_syscalls_);
    req.set_group_by(by_);
    req.set_sort(sort_);
    req.mutable_range()->set_since_ago_ns(absl::ToInt64Nanoseconds(since_));
    req.mutable_range()->set_until_ago_ns(absl::ToInt64Nanoseconds(until_));

    Query<v1::SyscallsResponse> q = PerAgentQuery<v1::FleetSyscallsResponse>(
        &v1::Vigil::Stub::GetSyscalls, req,
        [&](const v1::SyscallsResponse& r) { return FormatSyscalls(r, req.group_by()); });
    // Several agents: one table ranked across hosts, with a HOST column.
    q.fleet = [&](Answers<v1::SyscallsResponse>& answers, bool json) {
      v1::FleetSyscallsResponse fleet = ToFleet<v1::FleetSyscallsResponse>(answers);
      return json ? ToJson(fleet)
                  : FormatFleetSyscalls(fleet, req.group_by(), req.sort(),
                                        req.top() ? req.top() : 20);
    };
    return RunQuery(inv, q, watch_);
  }

 private:
  uint32_t pid_ = 0, tid_ = 0, top_ = 0, top_syscalls_ = 0;
  std::string comm_;
  absl::Duration since_ = absl::ZeroDuration(), until_ = absl::ZeroDuration();
  v1::SyscallGroupBy by_ = v1::SyscallGroupBy();
  v1::SyscallSort sort_ = v1::SyscallSort();
  WatchFlags watch_;
};

}  // namespace

std::unique_ptr<Command> NewSyscallsCommand() { return std::make_unique<SyscallsCommand>(); }

}  // namespace vigil::cli
