#include "agent/trace/syscall_args.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "agent/syscalls/syscall_table.h"
#include "bpf/trace.h"

namespace vigil {
namespace {

// One letter per argument:
//   i int   u unsigned   x hex   p pointer   z size   f fd   d dirfd
//   s string (copied by the kernel side)     o open flags   m mode (octal)
//   P mmap prot   M mmap flags   g signal   a access mode   A AT_* flags
//   w lseek whence   c fcntl command   k clock id   D socket domain
//   T socket type   F futex op   h sigprocmask how
struct Shape {
  const char* name;
  const char* kinds;
};

constexpr Shape kShapes[] = {
    {"read", "fpz"},
    {"write", "fpz"},
    {"open", "som"},
    {"close", "f"},
    {"stat", "sp"},
    {"fstat", "fp"},
    {"lstat", "sp"},
    {"poll", "pui"},
    {"lseek", "fiw"},
    {"mmap", "pzPMfx"},
    {"mprotect", "pzP"},
    {"munmap", "pz"},
    {"brk", "p"},
    {"rt_sigaction", "gppz"},
    {"rt_sigprocmask", "hppz"},
    {"rt_sigreturn", ""},
    {"ioctl", "fxp"},
    {"pread64", "fpzi"},
    {"pwrite64", "fpzi"},
    {"readv", "fpi"},
    {"writev", "fpi"},
    {"access", "sa"},
    {"pipe", "p"},
    {"select", "ipppp"},
    {"sched_yield", ""},
    {"mremap", "pzzxp"},
    {"msync", "pzx"},
    {"madvise", "pzi"},
    {"dup", "f"},
    {"dup2", "ff"},
    {"pause", ""},
    {"nanosleep", "pp"},
    {"getitimer", "ip"},
    {"alarm", "u"},
    {"setitimer", "ipp"},
    {"getpid", ""},
    {"sendfile", "ffpz"},
    {"socket", "DTi"},
    {"connect", "fpi"},
    {"accept", "fpp"},
    {"sendto", "fpzxpi"},
    {"recvfrom", "fpzxpp"},
    {"sendmsg", "fpx"},
    {"recvmsg", "fpx"},
    {"shutdown", "fi"},
    {"bind", "fpi"},
    {"listen", "fi"},
    {"getsockname", "fpp"},
    {"getpeername", "fpp"},
    {"socketpair", "DTip"},
    {"setsockopt", "fiipi"},
    {"getsockopt", "fiipp"},
    {"clone", "xpppx"},
    {"fork", ""},
    {"vfork", ""},
    {"execve", "spp"},
    {"exit", "i"},
    {"wait4", "ipxp"},
    {"kill", "ig"},
    {"uname", "p"},
    {"fcntl", "fcx"},
    {"flock", "fx"},
    {"fsync", "f"},
    {"fdatasync", "f"},
    {"truncate", "si"},
    {"ftruncate", "fi"},
    {"getcwd", "pz"},
    {"chdir", "s"},
    {"fchdir", "f"},
    {"rename", "ss"},
    {"mkdir", "sm"},
    {"rmdir", "s"},
    {"creat", "sm"},
    {"link", "ss"},
    {"unlink", "s"},
    {"symlink", "ss"},
    {"readlink", "spz"},
    {"chmod", "sm"},
    {"fchmod", "fm"},
    {"chown", "sii"},
    {"fchown", "fii"},
    {"umask", "m"},
    {"gettimeofday", "pp"},
    {"getrlimit", "ip"},
    {"getrusage", "ip"},
    {"sysinfo", "p"},
    {"getuid", ""},
    {"getgid", ""},
    {"geteuid", ""},
    {"getegid", ""},
    {"getppid", ""},
    {"getpgrp", ""},
    {"setsid", ""},
    {"statfs", "sp"},
    {"fstatfs", "fp"},
    {"prctl", "ixxxx"},
    {"arch_prctl", "xp"},
    {"chroot", "s"},
    {"mount", "sssxp"},
    {"umount2", "sx"},
    {"gettid", ""},
    {"getxattr", "sspz"},
    {"lgetxattr", "sspz"},
    {"fgetxattr", "fspz"},
    {"tkill", "ig"},
    {"time", "p"},
    {"futex", "pFipp"},
    {"sched_getaffinity", "izp"},
    {"getdents64", "fpz"},
    {"set_tid_address", "p"},
    {"clock_gettime", "kp"},
    {"clock_getres", "kp"},
    {"clock_nanosleep", "kxpp"},
    {"exit_group", "i"},
    {"epoll_wait", "fpii"},
    {"epoll_ctl", "fifp"},
    {"tgkill", "iig"},
    {"inotify_add_watch", "fsx"},
    {"openat", "dsom"},
    {"mkdirat", "dsm"},
    {"fchownat", "dsiiA"},
    {"newfstatat", "dspA"},
    {"unlinkat", "dsA"},
    {"renameat", "dsds"},
    {"linkat", "dsdsA"},
    {"symlinkat", "sds"},
    {"readlinkat", "dspz"},
    {"fchmodat", "dsm"},
    {"faccessat", "dsa"},
    {"pselect6", "ipppp"},
    {"ppoll", "puppz"},
    {"set_robust_list", "pz"},
    {"utimensat", "dspA"},
    {"epoll_pwait", "fpiipz"},
    {"timerfd_create", "kx"},
    {"eventfd2", "ux"},
    {"accept4", "fppx"},
    {"epoll_create1", "x"},
    {"dup3", "ffo"},
    {"pipe2", "po"},
    {"prlimit64", "iipp"},
    {"renameat2", "dsdsx"},
    {"getrandom", "pzx"},
    {"memfd_create", "sx"},
    {"execveat", "dsppA"},
    {"statx", "dsAxp"},
    {"rseq", "pzxx"},
    {"clone3", "pz"},
    {"close_range", "ffx"},
    {"openat2", "dspz"},
    {"faccessat2", "dsaA"},
    {"epoll_pwait2", "fpippz"},
};

// nr -> kinds, built once from the table and this architecture's numbers.
const std::array<const char*, TRACE_NR_MAX>& ShapeByNr() {
  static const auto* by_nr = [] {
    auto* t = new std::array<const char*, TRACE_NR_MAX>{};
    for (const Shape& s : kShapes) {
      const int nr = SyscallNumber(s.name);
      if (nr >= 0 && nr < TRACE_NR_MAX) (*t)[nr] = s.kinds;
    }
    return t;
  }();
  return *by_nr;
}

const char* KindsOf(uint32_t nr) { return nr < TRACE_NR_MAX ? ShapeByNr()[nr] : nullptr; }

std::string Hex(uint64_t v) { return absl::StrFormat("%#x", v); }

std::string Ptr(uint64_t v) { return v == 0 ? "NULL" : absl::StrFormat("%#x", v); }

struct Flag {
  uint64_t bit;
  const char* name;
};

// Names the set bits among `flags`; what is left is appended in hex.
std::string Flags(uint64_t v, std::initializer_list<Flag> flags, const char* zero) {
  std::vector<std::string> parts;
  for (const Flag& f : flags) {
    if (f.bit != 0 && (v & f.bit) == f.bit) {
      parts.emplace_back(f.name);
      v &= ~f.bit;
    }
  }
  if (v != 0) parts.push_back(Hex(v));
  if (parts.empty()) return zero;
  return absl::StrJoin(parts, "|");
}

std::string Dec(uint64_t v) { return absl::StrCat(v); }

// The name of the value `v` among `names` (Flag.bit holds a value here,
// not a bit), else what `other` makes of it.
std::string Named(uint64_t v, std::initializer_list<Flag> names, std::string (*other)(uint64_t)) {
  for (const Flag& n : names) {
    if (n.bit == v) return n.name;
  }
  return other(v);
}

// A field under `mask` holding one of `modes`, then flag bits outside it:
// "O_RDWR|O_CREAT", "SOCK_DGRAM|SOCK_CLOEXEC".
std::string ModeAndFlags(uint64_t v, uint64_t mask, std::initializer_list<Flag> modes,
                         std::string (*other)(uint64_t), std::initializer_list<Flag> flags) {
  const std::string mode = Named(v & mask, modes, other);
  const std::string rest = Flags(v & ~mask, flags, "");
  return rest.empty() ? mode : absl::StrCat(mode, "|", rest);
}

std::string OpenFlags(uint64_t v) {
  return ModeAndFlags(v, O_ACCMODE,
                      {{O_RDONLY, "O_RDONLY"}, {O_WRONLY, "O_WRONLY"}, {O_RDWR, "O_RDWR"}}, Hex,
                      {{O_TMPFILE, "O_TMPFILE"},
                       {O_CREAT, "O_CREAT"},
                       {O_EXCL, "O_EXCL"},
                       {O_NOCTTY, "O_NOCTTY"},
                       {O_TRUNC, "O_TRUNC"},
                       {O_APPEND, "O_APPEND"},
                       {O_NONBLOCK, "O_NONBLOCK"},
                       {O_DSYNC, "O_DSYNC"},
                       {O_SYNC, "O_SYNC"},
                       {O_DIRECT, "O_DIRECT"},
                       {O_LARGEFILE, "O_LARGEFILE"},
                       {O_DIRECTORY, "O_DIRECTORY"},
                       {O_NOFOLLOW, "O_NOFOLLOW"},
                       {O_NOATIME, "O_NOATIME"},
                       {O_CLOEXEC, "O_CLOEXEC"},
                       {O_PATH, "O_PATH"}});
}

std::string Signal(uint64_t v) {
  // The kernel's real-time signals, as strace names them (glibc keeps the
  // first two for itself, so SIGRTMIN is not 32 in user space).
  if (v >= 32 && v <= 64) return absl::StrCat("SIGRT_", v - 32);
  const char* abbrev = sigabbrev_np(static_cast<int>(v));
  return abbrev ? absl::StrCat("SIG", abbrev) : absl::StrCat(static_cast<int64_t>(v));
}

std::string FcntlCmd(uint64_t v) {
  return Named(v,
               {{F_DUPFD, "F_DUPFD"},
                {F_GETFD, "F_GETFD"},
                {F_SETFD, "F_SETFD"},
                {F_GETFL, "F_GETFL"},
                {F_SETFL, "F_SETFL"},
                {F_GETLK, "F_GETLK"},
                {F_SETLK, "F_SETLK"},
                {F_SETLKW, "F_SETLKW"},
                {F_DUPFD_CLOEXEC, "F_DUPFD_CLOEXEC"}},
               Dec);
}

std::string ClockId(uint64_t v) {
  static constexpr const char* kNames[] = {"CLOCK_REALTIME",           "CLOCK_MONOTONIC",
                                           "CLOCK_PROCESS_CPUTIME_ID", "CLOCK_THREAD_CPUTIME_ID",
                                           "CLOCK_MONOTONIC_RAW",      "CLOCK_REALTIME_COARSE",
                                           "CLOCK_MONOTONIC_COARSE",   "CLOCK_BOOTTIME"};
  return v < std::size(kNames) ? kNames[v] : absl::StrCat(static_cast<int64_t>(v));
}

std::string Domain(uint64_t v) {
  return Named(v,
               {{AF_UNIX, "AF_UNIX"},
                {AF_INET, "AF_INET"},
                {AF_INET6, "AF_INET6"},
                {AF_NETLINK, "AF_NETLINK"},
                {AF_PACKET, "AF_PACKET"}},
               Dec);
}

std::string SockType(uint64_t v) {
  return ModeAndFlags(v, 0xf,
                      {{SOCK_STREAM, "SOCK_STREAM"},
                       {SOCK_DGRAM, "SOCK_DGRAM"},
                       {SOCK_RAW, "SOCK_RAW"},
                       {SOCK_SEQPACKET, "SOCK_SEQPACKET"}},
                      Dec, {{SOCK_NONBLOCK, "SOCK_NONBLOCK"}, {SOCK_CLOEXEC, "SOCK_CLOEXEC"}});
}

std::string FutexOp(uint64_t v) {
  static constexpr const char* kOps[] = {
      "FUTEX_WAIT",           "FUTEX_WAKE",        "FUTEX_FD",          "FUTEX_REQUEUE",
      "FUTEX_CMP_REQUEUE",    "FUTEX_WAKE_OP",     "FUTEX_LOCK_PI",     "FUTEX_UNLOCK_PI",
      "FUTEX_TRYLOCK_PI",     "FUTEX_WAIT_BITSET", "FUTEX_WAKE_BITSET", "FUTEX_WAIT_REQUEUE_PI",
      "FUTEX_CMP_REQUEUE_PI", "FUTEX_LOCK_PI2"};
  const uint64_t op = v & FUTEX_CMD_MASK;
  std::string s = op < std::size(kOps) ? kOps[op] : absl::StrCat(op);
  if (v & FUTEX_PRIVATE_FLAG) s += "_PRIVATE";
  if (v & FUTEX_CLOCK_REALTIME) s += "|FUTEX_CLOCK_REALTIME";
  return s;
}

// A copied string: quoted, with non-printing bytes escaped as strace does.
std::string Quote(const char* s, size_t cap, bool cut) {
  std::string out = "\"";
  for (size_t i = 0; i < cap && s[i] != '\0'; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          absl::StrAppendFormat(&out, "\\x%02x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += "\"";
  if (cut) out += "...";
  return out;
}

std::string Fd(FdPaths* fds, uint32_t pid, uint64_t v) {
  const int64_t fd = static_cast<int32_t>(v);
  if (fd < 0) return absl::StrCat(fd);
  const std::string path = fds ? fds->Get(pid, fd) : "";
  return path.empty() ? absl::StrCat(fd) : absl::StrCat(fd, "<", path, ">");
}

std::string OneArg(char kind, const vigil_trace_event& e, int i, FdPaths* fds) {
  const uint64_t v = e.args[i];
  switch (kind) {
    case 'i':
      return absl::StrCat(static_cast<int64_t>(static_cast<int32_t>(v)));
    case 'u':
    case 'z':
      return absl::StrCat(v);
    case 'p':
      return Ptr(v);
    case 'f':
      return Fd(fds, e.pid, v);
    case 'd':
      return static_cast<int32_t>(v) == AT_FDCWD ? "AT_FDCWD" : Fd(fds, e.pid, v);
    case 's':
      for (int slot = 0; slot < TRACE_MAX_STRS; ++slot) {
        if (e.str_arg[slot] != i) continue;
        const bool fault = e.flags & (slot ? TRACE_EV_STR1_FAULT : TRACE_EV_STR0_FAULT);
        if (fault) return Ptr(v);
        return Quote(e.str[slot], TRACE_STR_LEN,
                     e.flags & (slot ? TRACE_EV_STR1_CUT : TRACE_EV_STR0_CUT));
      }
      return Ptr(v);  // not copied (unfinished call, or a third string)
    case 'o':
      return OpenFlags(v);
    case 'm':
      return absl::StrFormat("0%o", v);
    case 'P':
      return Flags(v,
                   {{PROT_READ, "PROT_READ"}, {PROT_WRITE, "PROT_WRITE"}, {PROT_EXEC, "PROT_EXEC"}},
                   "PROT_NONE");
    case 'M':
      return ModeAndFlags(v, MAP_TYPE, {{MAP_SHARED, "MAP_SHARED"}, {MAP_PRIVATE, "MAP_PRIVATE"}},
                          Hex,
                          {{MAP_FIXED, "MAP_FIXED"},
                           {MAP_ANONYMOUS, "MAP_ANONYMOUS"},
                           {MAP_NORESERVE, "MAP_NORESERVE"},
                           {MAP_POPULATE, "MAP_POPULATE"},
                           {MAP_STACK, "MAP_STACK"},
                           {MAP_DENYWRITE, "MAP_DENYWRITE"},
                           {MAP_GROWSDOWN, "MAP_GROWSDOWN"},
                           {MAP_FIXED_NOREPLACE, "MAP_FIXED_NOREPLACE"}});
    case 'g':
      return Signal(v);
    case 'a':
      return Flags(v, {{R_OK, "R_OK"}, {W_OK, "W_OK"}, {X_OK, "X_OK"}}, "F_OK");
    case 'A':
      return Flags(v,
                   {{AT_SYMLINK_NOFOLLOW, "AT_SYMLINK_NOFOLLOW"},
                    {AT_REMOVEDIR, "AT_REMOVEDIR"},
                    {AT_SYMLINK_FOLLOW, "AT_SYMLINK_FOLLOW"},
                    {AT_NO_AUTOMOUNT, "AT_NO_AUTOMOUNT"},
                    {AT_EMPTY_PATH, "AT_EMPTY_PATH"}},
                   "0");
    case 'w':
      return v == SEEK_SET   ? "SEEK_SET"
             : v == SEEK_CUR ? "SEEK_CUR"
             : v == SEEK_END ? "SEEK_END"
                             : absl::StrCat(v);
    case 'c':
      return FcntlCmd(v);
    case 'k':
      return ClockId(v);
    case 'D':
      return Domain(v);
    case 'T':
      return SockType(v);
    case 'F':
      return FutexOp(v);
    case 'h':
      return v == SIG_BLOCK     ? "SIG_BLOCK"
             : v == SIG_UNBLOCK ? "SIG_UNBLOCK"
             : v == SIG_SETMASK ? "SIG_SETMASK"
                                : absl::StrCat(v);
    default:
      return Hex(v);
  }
}

bool ReturnsFd(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "open",          "openat",         "openat2",       "creat",  "memfd_create", "dup",
      "dup2",          "dup3",           "socket",        "accept", "accept4",      "eventfd2",
      "epoll_create1", "timerfd_create", "inotify_init1", "fcntl"};
  for (std::string_view n : kNames) {
    if (n == name) return true;
  }
  return false;
}

}  // namespace

uint8_t StringArgMask(int nr) {
  const char* kinds = nr >= 0 ? KindsOf(static_cast<uint32_t>(nr)) : nullptr;
  uint8_t mask = 0;
  for (int i = 0; kinds && kinds[i] && i < 6; ++i) {
    if (kinds[i] == 's') mask |= static_cast<uint8_t>(1u << i);
  }
  return mask;
}

std::string FdPaths::Get(uint32_t pid, int64_t fd) {
  auto it = paths_.find({pid, fd});
  if (it != paths_.end()) return it->second;
  if (paths_.size() >= max_entries_) return "";
  char link[64], buf[4096];
  snprintf(link, sizeof(link), "/proc/%u/fd/%lld", pid, static_cast<long long>(fd));
  const ssize_t n = readlink(link, buf, sizeof(buf));
  // Unknown stays unknown for the session: one readlink per descriptor.
  std::string path = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  paths_[{pid, fd}] = path;
  return path;
}

void FdPaths::Forget(uint32_t pid, int64_t fd) { paths_.erase({pid, fd}); }

void FdPaths::Learn(const vigil_trace_event& e) {
  if (e.ret < 0) return;
  const std::string_view name = SyscallNameOrEmpty(static_cast<int>(e.nr));
  if (name == "close") {
    Forget(e.pid, static_cast<int32_t>(e.args[0]));
    return;
  }
  if (!ReturnsFd(name)) return;
  Forget(e.pid, e.ret);  // a reused number: its old path is stale
  // Events are decoded after the fact, when a short-lived fd may already be
  // closed: an absolute path the call opened is its name (strace -y reads
  // the link instead, which also resolves relative paths).
  const int path_arg = name == "open" || name == "creat" ? 0 : name == "openat" ? 1 : -1;
  for (int slot = 0; path_arg >= 0 && slot < TRACE_MAX_STRS; ++slot) {
    const bool cut = e.flags & (slot ? TRACE_EV_STR1_CUT : TRACE_EV_STR0_CUT);
    const bool fault = e.flags & (slot ? TRACE_EV_STR1_FAULT : TRACE_EV_STR0_FAULT);
    if (e.str_arg[slot] != path_arg || cut || fault || e.str[slot][0] != '/') continue;
    if (paths_.size() < max_entries_) {
      paths_[{e.pid, e.ret}] = std::string(e.str[slot], strnlen(e.str[slot], TRACE_STR_LEN));
    }
  }
}

std::vector<std::string> DecodeArgs(const vigil_trace_event& e, FdPaths* fds) {
  std::vector<std::string> out;
  const char* kinds = KindsOf(e.nr);
  if (kinds == nullptr) {
    for (uint64_t v : e.args) out.push_back(Hex(v));
    return out;
  }
  for (int i = 0; kinds[i] && i < 6; ++i) out.push_back(OneArg(kinds[i], e, i, fds));
  // open's mode means something only when it creates, and strace leaves it
  // out otherwise.
  const std::string_view name = SyscallNameOrEmpty(static_cast<int>(e.nr));
  const int flags_arg = name == "open" ? 1 : name == "openat" ? 2 : -1;
  if (flags_arg >= 0 && (e.args[flags_arg] & (O_CREAT | O_TMPFILE)) == 0 &&
      out.size() == static_cast<size_t>(flags_arg) + 2) {
    out.pop_back();
  }
  return out;
}

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name ? name : "";
}

}  // namespace vigil
