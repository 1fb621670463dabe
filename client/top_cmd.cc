// vigil top: the one screen an SRE opens first. Per process (and thread):
// exact CPU, memory and its growth, syscalls and their errors, time in
// syscalls, UDP drops and alert markers, from one GetTop per refresh.
// Interactive (ncurses) by default; --once prints one screen as plain text,
// --json the rows.
#include <locale.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/flags.h"
#include "client/format.h"
#include "client/profile_export.h"
#include "client/runner.h"
#include "client/top_format.h"
#include "common/regex.h"
#include "common/safe_text.h"

// Last: curses defines macros (OK, and function-like ones unless told not
// to) that would rewrite gRPC's and the standard library's names.
#define NCURSES_NOMACROS
#include <curses.h>
#undef OK

namespace vigil::cli {
namespace {

std::string Clock() { return absl::FormatTime("%H:%M:%S", absl::Now(), absl::LocalTimeZone()); }

// How far back the detail of one thread looks.
constexpr absl::Duration kDrillRange = absl::Seconds(30);

// One RPC with the agent's deadline; its answer as `format` renders it, or
// the error, appended line by line.
template <typename Req, typename Resp, typename Format>
void AppendAnswer(v1::Vigil::Stub& stub, const ConnectOptions& conn, Rpc<Req, Resp> rpc,
                  const Req& req, Format format, std::vector<std::string>* lines) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, conn);
  Resp r;
  grpc::Status s = (stub.*rpc)(&ctx, req, &r);
  const std::string text = s.ok() ? format(r) : std::string(FromGrpc(s, conn).message());
  for (absl::string_view l : absl::StrSplit(text, '\n')) lines->emplace_back(l);
}

// What the interactive view shows, changed by keys.
struct ViewState {
  v1::TopSort sort = v1::TOP_SORT_CPU;
  bool threads = false;
  std::string regex;
  uint32_t pid = 0;
  size_t selected = 0;  // index into the screen's rows
  size_t scroll = 0;    // first row shown
  bool drill = false;   // showing one thread's (or process's) detail
  uint32_t drill_pid = 0, drill_tid = 0;
  size_t drill_scroll = 0;
  std::string message;  // one line under the header (errors, prompts' results)
};

// ncurses for the lifetime of the view; endwin() however it ends.
class Curses {
 public:
  Curses() {
    setlocale(LC_ALL, "");  // UTF-8 names (already escaped) draw as text
    initscr();
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    timeout(100);
  }
  ~Curses() { endwin(); }
  Curses(const Curses&) = delete;
  Curses& operator=(const Curses&) = delete;
};

class TopCommand : public Command {
 public:
  TopCommand()
      : Command({"top", "the first screen: CPU, memory, syscalls, drops and alerts per process",
                 R"(usage: vigil top [options]

One row per process (H: per thread too), refreshed every --every:
  CPU%    exact CPU over the refresh period, percent of one CPU (the
          scheduler's runtime of every thread, read by a BPF task iterator
          each interval; "~" marks an estimate from profiler samples when
          the cpu capability is off)
  RSS     resident memory; GROW/s its least-squares growth rate
  SYSC/s  syscalls per second; ERR/s those that failed
  SYS%    time inside syscalls, percent of wall time (summed over threads)
  DROP/s  UDP packets dropped at the process's sockets, per second
  ALERT   SPIN (a thread on CPU without syscalls), MEMGROW (RSS growing)
A column whose capability is off shows "-", and the header says why.

keys: P N M G S E Y D C sort by CPU%, PID, RSS, GROW/s, SYSC/s, ERR/s, SYS%,
DROP/s, COMM (< > step through them); H threads; / comm regex (empty
clears); p one pid (Enter: the selected row's, 0 clears); arrows, PgUp/PgDn
move; Enter drills into the selected thread (hot functions, syscalls,
alerts; Esc or Backspace returns); q quits.

--once prints one screen as plain text (no terminal control; every row);
--json prints the GetTop response (proto3 JSON).
)"}) {}

  void AddFlags(CLI::App& app) override {
    AddSwitch(app, "--once", &once_, "print one screen as plain text and exit");
    AddDuration(app, "--every", &every_, absl::Milliseconds(200), absl::Hours(1),
                "refresh period (default 1s)");
    AddDuration(app, "--since", &since_, absl::Milliseconds(100), absl::Hours(24 * 31),
                "rates over this much of the past (default: --every, at least 1s)");
    AddCount(app, "--pid", &state_.pid, 1, UINT32_MAX, "a process id", "only this process");
    AddRegex(app, "--comm", &state_.regex, "only processes or threads whose name matches REGEX");
    AddSwitch(app, "--threads", &state_.threads, "a row per thread under each process (key H)");
    AddTop(app, &top_, "--once, --json: at most N process rows (default 200)");
    std::vector<std::pair<std::string, v1::TopSort>> sorts = {
        {"cpu", v1::TOP_SORT_CPU},       {"rss", v1::TOP_SORT_RSS},
        {"growth", v1::TOP_SORT_GROWTH}, {"syscalls", v1::TOP_SORT_SYSCALLS},
        {"errors", v1::TOP_SORT_ERRORS}, {"syscall-time", v1::TOP_SORT_SYSCALL_TIME},
        {"drops", v1::TOP_SORT_DROPS},   {"pid", v1::TOP_SORT_PID},
        {"comm", v1::TOP_SORT_COMM}};
    AddEnum(app, "--sort", sorts, &state_.sort,
            "cpu, rss, growth, syscalls, errors, syscall-time, drops, pid or comm",
            "row order (default cpu)");
    AddCount(app, "--width", &width_, 40, 1000, "a width in columns",
             "--once: line width (default 120)");
  }

  int Run(const Invocation& inv) override {
    once_ = once_ || inv.json;
    if (once_) {
      const int width = static_cast<int>(width_);
      const bool threads = state_.threads;
      return RunQuery(inv, PerAgentQuery<v1::FleetTopResponse>(
                               &v1::Vigil::Stub::GetTop, Request(),
                               [width, threads](const v1::TopResponse& r) {
                                 TopScreenOptions o;
                                 o.width = width;
                                 o.clock = Clock();
                                 o.threads = threads;
                                 return TopScreenText(RenderTop(r, o));
                               },
                               "\n"));
    }
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
      return UsageError(inv.cmd, "the interactive view needs a terminal (use --once or --json)");
    }
    std::unique_ptr<v1::Vigil::Stub> stub =
        ConnectOne(inv, "the interactive view shows one agent (use --once for several)");
    if (!stub) return kExitUsage;
    return Interactive(inv.agents.front(), *stub);
  }

 private:
  v1::TopRequest Request() const {
    v1::TopRequest req;
    const absl::Duration since =
        since_ > absl::ZeroDuration() ? since_ : std::max(every_, absl::Seconds(1));
    req.mutable_range()->set_since_ago_ns(absl::ToInt64Nanoseconds(since));
    req.set_pid(state_.pid);
    req.set_comm_regex(state_.regex);
    req.set_sort(state_.sort);
    req.set_threads(state_.threads);
    // The interactive view scrolls through many; --once prints what it asks.
    req.set_top(once_ || top_ != 0 ? top_ : kRows);
    return req;
  }

  int Interactive(const ConnectOptions& conn, v1::Vigil::Stub& stub);
  void Draw(const ConnectOptions& conn);
  void DrawDrill();
  bool HandleKey(int ch, v1::Vigil::Stub& stub, const ConnectOptions& conn);
  void Fetch(v1::Vigil::Stub& stub, const ConnectOptions& conn);
  void FetchDrill(v1::Vigil::Stub& stub, const ConnectOptions& conn);
  std::string Prompt(const std::string& question);
  std::string StateLine() const;

  static constexpr uint32_t kRows = 2000;  // rows asked for; the view scrolls

  bool once_ = false;
  uint32_t top_ = 0;
  absl::Duration every_ = absl::Seconds(1);
  absl::Duration since_ = absl::ZeroDuration();
  uint32_t width_ = 120;
  ViewState state_;
  // The interactive view's last answer and its rendering.
  v1::TopResponse last_;
  bool have_last_ = false;
  std::string error_;
  TopScreen screen_;
  std::vector<std::string> drill_lines_;
};

std::string TopCommand::StateLine() const {
  std::string s =
      absl::StrCat("sort ", TopSortName(state_.sort), state_.threads ? "  threads" : "");
  if (!state_.regex.empty()) absl::StrAppend(&s, "  /", SafeText(state_.regex), "/");
  if (state_.pid != 0) absl::StrAppend(&s, "  pid ", state_.pid);
  // Cut at the screen's width: a wider terminal shows more of the keys.
  absl::StrAppend(&s,
                  "  keys: q quit, H threads, / filter, p pid, Enter detail, P N M G S E Y D C "
                  "sort by CPU% PID RSS GROW/s SYSC/s ERR/s SYS% DROP/s COMM, < > next sort");
  return s;
}

void TopCommand::Fetch(v1::Vigil::Stub& stub, const ConnectOptions& conn) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, conn);
  v1::TopResponse r;
  grpc::Status s = stub.GetTop(&ctx, Request(), &r);
  if (!s.ok()) {
    error_ = std::string(FromGrpc(s, conn).message());
    return;
  }
  error_.clear();
  last_ = std::move(r);
  have_last_ = true;
}

void TopCommand::FetchDrill(v1::Vigil::Stub& stub, const ConnectOptions& conn) {
  std::vector<std::string> lines;
  const uint32_t pid = state_.drill_pid, tid = state_.drill_tid;
  lines.push_back(absl::StrCat("detail of ", tid != 0 ? absl::StrCat("thread ", tid, " of ") : "",
                               "process ", pid, ", last ", absl::FormatDuration(kDrillRange),
                               "  (Esc/Backspace returns, q quits)"));
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, conn);
    v1::ListAlertsRequest req;
    v1::ListAlertsResponse r;
    grpc::Status s = stub.ListAlerts(&ctx, req, &r);
    std::vector<std::string> alerts;
    if (s.ok()) {
      for (const v1::SpinAlert& a : r.alerts()) {
        if (a.state() != v1::ALERT_STATE_FIRING || a.pid() != pid) continue;
        if (a.kind() == v1::ALERT_KIND_SPIN && tid != 0 && a.tid() != tid) continue;
        if (a.kind() == v1::ALERT_KIND_SPIN) {
          alerts.push_back(absl::StrFormat(
              "SPIN: tid %u %s on CPU %.0f%% without syscalls for %.0fs", a.tid(),
              SafeText(a.comm()), a.cpu_share() * 100, static_cast<double>(a.duration_ns()) / 1e9));
        } else {
          alerts.push_back(
              absl::StrFormat("MEMGROW: %s/s, rss %s, for %.0fs",
                              CompactBytes(a.memory_growth().growth_bytes_per_s()),
                              CompactBytes(static_cast<double>(a.memory_growth().rss_bytes())),
                              static_cast<double>(a.duration_ns()) / 1e9));
        }
      }
    } else {
      alerts.push_back(absl::StrCat("alerts: ", FromGrpc(s, conn).message()));
    }
    if (alerts.empty()) alerts.push_back("alerts: none firing");
    for (std::string& a : alerts) lines.push_back(std::move(a));
  }
  lines.push_back("");
  lines.push_back("hot functions (profiler samples):");
  v1::HotRequest hot;
  hot.mutable_range()->set_since_ago_ns(absl::ToInt64Nanoseconds(kDrillRange));
  hot.set_pid(pid);
  hot.set_tid(tid);
  hot.set_top(10);
  AppendAnswer(stub, conn, &v1::Vigil::Stub::GetHot, hot, FormatHot, &lines);
  lines.push_back("syscalls:");
  v1::SyscallsRequest sys;
  sys.mutable_range()->set_since_ago_ns(absl::ToInt64Nanoseconds(kDrillRange));
  sys.set_pid(pid);
  sys.set_tid(tid);
  const v1::SyscallGroupBy by =
      tid != 0 ? v1::SYSCALL_GROUP_BY_THREAD : v1::SYSCALL_GROUP_BY_PROCESS;
  sys.set_group_by(by);
  sys.set_top(1);
  sys.set_top_syscalls(15);
  AppendAnswer(
      stub, conn, &v1::Vigil::Stub::GetSyscalls, sys,
      [by](const v1::SyscallsResponse& r) { return FormatSyscalls(r, by); }, &lines);
  drill_lines_ = std::move(lines);
}

// One line typed at the bottom of the screen (Enter ends it, Esc cancels:
// nullopt is not needed, Esc returns what was typed before it is cleared).
std::string TopCommand::Prompt(const std::string& question) {
  std::string typed;
  timeout(-1);
  curs_set(1);
  for (;;) {
    move(LINES - 1, 0);
    clrtoeol();
    addnstr((question + typed).c_str(), std::max(0, COLS - 1));
    refresh();
    const int ch = getch();
    if (ch == '\n' || ch == KEY_ENTER || ch == '\r') break;
    if (ch == 27) {  // Esc: cancel
      typed = "\x1b";
      break;
    }
    if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
      if (!typed.empty()) typed.pop_back();
    } else if (ch >= 32 && ch < 127 && typed.size() < 256) {
      typed.push_back(static_cast<char>(ch));
    }
  }
  curs_set(0);
  timeout(100);
  return typed;
}

void TopCommand::Draw(const ConnectOptions& conn) {
  erase();
  const int width = std::max(COLS, 1);
  TopScreenOptions o;
  o.width = width;
  o.agent = conn.agent;
  o.clock = Clock();
  o.state = StateLine();
  o.threads = state_.threads;
  screen_ = have_last_ ? RenderTop(last_, o) : TopScreen{};
  if (!have_last_) screen_.header.push_back("vigil top: waiting for " + SafeText(conn.agent));
  std::vector<std::string> header = screen_.header;
  if (!error_.empty()) header.push_back("error: " + SafeText(error_));
  if (!state_.message.empty()) header.push_back(state_.message);
  int y = 0;
  for (const std::string& l : header) {
    if (y >= LINES - 1) break;
    mvaddnstr(y++, 0, l.c_str(), width);
  }
  if (y < LINES) {
    attron(A_BOLD);
    mvaddnstr(y++, 0, screen_.columns.c_str(), width);
    attroff(A_BOLD);
  }
  const size_t visible = LINES > y ? static_cast<size_t>(LINES - y) : 0;
  if (!screen_.rows.empty()) {
    state_.selected = std::min(state_.selected, screen_.rows.size() - 1);
  } else {
    state_.selected = 0;
  }
  if (state_.selected < state_.scroll) state_.scroll = state_.selected;
  if (visible > 0 && state_.selected >= state_.scroll + visible) {
    state_.scroll = state_.selected - visible + 1;
  }
  for (size_t i = state_.scroll; i < screen_.rows.size() && y < LINES; ++i, ++y) {
    if (i == state_.selected) attron(A_REVERSE);
    mvaddnstr(y, 0, screen_.rows[i].c_str(), width);
    if (i == state_.selected) {
      // The bar spans the line.
      for (int x = getcurx(stdscr); x < width && x > 0; ++x) addch(' ');
      attroff(A_REVERSE);
    }
  }
  refresh();
}

void TopCommand::DrawDrill() {
  erase();
  const int width = std::max(COLS, 1);
  const size_t n = drill_lines_.size();
  state_.drill_scroll = std::min(state_.drill_scroll, n > 0 ? n - 1 : 0);
  int y = 0;
  for (size_t i = state_.drill_scroll; i < n && y < LINES; ++i, ++y) {
    mvaddnstr(y, 0, drill_lines_[i].c_str(), width);
  }
  refresh();
}

// Returns false to quit.
bool TopCommand::HandleKey(int ch, v1::Vigil::Stub& stub, const ConnectOptions& conn) {
  if (ch == 'q' || ch == 'Q') return false;
  const size_t page = static_cast<size_t>(std::max(LINES - 8, 1));
  if (state_.drill) {
    if (ch == 27 || ch == KEY_BACKSPACE || ch == 127 || ch == KEY_LEFT || ch == 'h') {
      state_.drill = false;
    } else if (ch == KEY_DOWN) {
      ++state_.drill_scroll;
    } else if (ch == KEY_UP && state_.drill_scroll > 0) {
      --state_.drill_scroll;
    } else if (ch == KEY_NPAGE) {
      state_.drill_scroll += page;
    } else if (ch == KEY_PPAGE) {
      state_.drill_scroll -= std::min(state_.drill_scroll, page);
    }
    return true;
  }
  const size_t rows = screen_.rows.size();
  state_.message.clear();
  for (const TopColumn& c : TopColumns()) {
    if (ch == c.key) {
      state_.sort = c.sort;
      Fetch(stub, conn);
      return true;
    }
  }
  switch (ch) {
    case '<':
    case '>': {
      const std::vector<TopColumn>& cols = TopColumns();
      size_t i = 0;
      while (i < cols.size() && cols[i].sort != state_.sort) ++i;
      i = ch == '>' ? (i + 1) % cols.size() : (i + cols.size() - 1) % cols.size();
      state_.sort = cols[i].sort;
      Fetch(stub, conn);
      break;
    }
    case 'H':
      state_.threads = !state_.threads;
      Fetch(stub, conn);
      break;
    case '/': {
      const std::string re = Prompt("filter comm (RE2, empty clears): ");
      if (re == "\x1b") break;
      if (!re.empty()) {
        absl::StatusOr<std::unique_ptr<RE2>> c = CompilePattern(re, "filter");
        if (!c.ok()) {
          state_.message = std::string(c.status().message());
          break;
        }
      }
      state_.regex = re;
      state_.selected = state_.scroll = 0;
      Fetch(stub, conn);
      break;
    }
    case 'p': {
      const uint32_t sel = rows > 0 ? screen_.ids[state_.selected].pid : 0;
      const std::string v = Prompt(absl::StrCat("pid (Enter: ", sel, ", 0: all): "));
      if (v == "\x1b") break;
      uint32_t pid = sel;
      if (!v.empty() && !absl::SimpleAtoi(v, &pid)) {
        state_.message = absl::StrCat("not a pid: ", SafeText(v));
        break;
      }
      state_.pid = pid;
      state_.selected = state_.scroll = 0;
      Fetch(stub, conn);
      break;
    }
    case KEY_DOWN:
      if (state_.selected + 1 < rows) ++state_.selected;
      break;
    case KEY_UP:
      if (state_.selected > 0) --state_.selected;
      break;
    case KEY_NPAGE:
      state_.selected = rows > 0 ? std::min(rows - 1, state_.selected + page) : 0;
      break;
    case KEY_PPAGE:
      state_.selected -= std::min(state_.selected, page);
      break;
    case KEY_HOME:
      state_.selected = 0;
      break;
    case KEY_END:
      state_.selected = rows > 0 ? rows - 1 : 0;
      break;
    case '\n':
    case '\r':
    case KEY_ENTER:
      if (rows == 0) break;
      state_.drill = true;
      state_.drill_pid = screen_.ids[state_.selected].pid;
      state_.drill_tid = screen_.ids[state_.selected].tid;
      state_.drill_scroll = 0;
      FetchDrill(stub, conn);
      break;
    default:
      break;
  }
  return true;
}

int TopCommand::Interactive(const ConnectOptions& conn, v1::Vigil::Stub& stub) {
  Curses curses;
  absl::Time next = absl::InfinitePast();
  for (;;) {
    if (absl::Now() >= next) {
      if (state_.drill) {
        FetchDrill(stub, conn);
      } else {
        Fetch(stub, conn);
      }
      next = absl::Now() + every_;
    }
    if (state_.drill) {
      DrawDrill();
    } else {
      Draw(conn);
    }
    const int ch = getch();
    if (ch == ERR || ch == KEY_RESIZE) continue;  // the next pass redraws at the new size
    if (!HandleKey(ch, stub, conn)) return kExitOk;
  }
}

}  // namespace

std::unique_ptr<Command> NewTopCommand() { return std::make_unique<TopCommand>(); }

}  // namespace vigil::cli
