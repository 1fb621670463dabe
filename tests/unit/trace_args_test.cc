// vigil trace's argument decoding: strace's spelling of the common flags,
// strings quoted and escaped, unknown syscalls in raw hex.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "agent/syscalls/syscall_table.h"
#include "agent/trace/syscall_args.h"
#include "bpf/trace.h"
#include "gtest/gtest.h"

namespace vigil {
namespace {

vigil_trace_event Event(const char* name, std::initializer_list<uint64_t> args) {
  vigil_trace_event e;
  memset(&e, 0, sizeof(e));
  e.nr = static_cast<uint32_t>(SyscallNumber(name));
  e.str_arg[0] = e.str_arg[1] = 0xff;
  int i = 0;
  for (uint64_t a : args) e.args[i++] = a;
  return e;
}

TEST(TraceArgsTest, OpenatLikeStrace) {
  vigil_trace_event e = Event(
      "openat", {static_cast<uint64_t>(AT_FDCWD), 0x1234, O_WRONLY | O_CREAT | O_CLOEXEC, 0644});
  e.str_arg[0] = 1;
  strcpy(e.str[0], "/tmp/a \"b\"\n");
  EXPECT_EQ(DecodeArgs(e, nullptr),
            (std::vector<std::string>{"AT_FDCWD", "\"/tmp/a \\\"b\\\"\\n\"",
                                      "O_WRONLY|O_CREAT|O_CLOEXEC", "0644"}));
  // A string the kernel cut at its bound, and one it could not read.
  e.flags = TRACE_EV_STR0_CUT;
  EXPECT_EQ(DecodeArgs(e, nullptr)[1], "\"/tmp/a \\\"b\\\"\\n\"...");
  e.flags = TRACE_EV_STR0_FAULT;
  EXPECT_EQ(DecodeArgs(e, nullptr)[1], "0x1234");
  // Without O_CREAT the mode is noise, and strace leaves it out.
  e.args[2] = O_RDONLY;
  EXPECT_EQ(DecodeArgs(e, nullptr).size(), 3u);
}

TEST(TraceArgsTest, AnAbsoluteOpenNamesItsFdAfterItIsClosed) {
  FdPaths fds;
  vigil_trace_event open_event = Event("openat", {static_cast<uint64_t>(AT_FDCWD), 0, 0});
  open_event.pid = 4194000;  // no such process: /proc cannot answer
  open_event.ret = 7;
  open_event.str_arg[0] = 1;
  strcpy(open_event.str[0], "/etc/hostname");
  fds.Learn(open_event);
  vigil_trace_event read_event = Event("read", {7, 0, 16});
  read_event.pid = open_event.pid;
  EXPECT_EQ(DecodeArgs(read_event, &fds)[0], "7</etc/hostname>");
  // A relative path is not a name: the fd stays a number.
  strcpy(open_event.str[0], "hostname");
  fds.Learn(open_event);
  EXPECT_EQ(DecodeArgs(read_event, &fds)[0], "7");
}

TEST(TraceArgsTest, MmapFlagsAndHex) {
  vigil_trace_event e = Event("mmap", {0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                                       static_cast<uint64_t>(-1), 0});
  EXPECT_EQ(DecodeArgs(e, nullptr),
            (std::vector<std::string>{"NULL", "8192", "PROT_READ|PROT_WRITE",
                                      "MAP_PRIVATE|MAP_ANONYMOUS", "-1", "0"}));
  e = Event("mprotect", {0x7f0000001000, 4096, 0});
  EXPECT_EQ(DecodeArgs(e, nullptr)[2], "PROT_NONE");
}

TEST(TraceArgsTest, SignalsAndUnknownSyscalls) {
  EXPECT_EQ(DecodeArgs(Event("kill", {42, 9}), nullptr),
            (std::vector<std::string>{"42", "SIGKILL"}));
  EXPECT_EQ(DecodeArgs(Event("rt_sigaction", {33, 0, 0, 8}), nullptr)[0], "SIGRT_1");
  vigil_trace_event e = Event("getppid", {});
  e.nr = 1000;  // no such syscall: every register, in hex
  const std::vector<std::string> raw = DecodeArgs(e, nullptr);
  ASSERT_EQ(raw.size(), 6u);
  EXPECT_EQ(raw[0], "0");
}

TEST(TraceArgsTest, StringMaskMarksPathArguments) {
  EXPECT_EQ(StringArgMask(SyscallNumber("openat")), 1u << 1);
  EXPECT_EQ(StringArgMask(SyscallNumber("renameat")), (1u << 1) | (1u << 3));
  EXPECT_EQ(StringArgMask(SyscallNumber("read")), 0u);
  EXPECT_EQ(ErrnoName(2), "ENOENT");
}

TEST(TraceArgsTest, FdPathsReadsProcOnceAndForgetsOnClose) {
  FdPaths fds(2);
  const int fd = open("/dev/null", O_RDONLY);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(fds.Get(static_cast<uint32_t>(getpid()), fd), "/dev/null");
  vigil_trace_event close_event = Event("close", {static_cast<uint64_t>(fd)});
  close_event.pid = static_cast<uint32_t>(getpid());
  close(fd);
  // Cached until a call says otherwise.
  EXPECT_EQ(fds.Get(static_cast<uint32_t>(getpid()), fd), "/dev/null");
  fds.Learn(close_event);
  EXPECT_EQ(fds.Get(static_cast<uint32_t>(getpid()), fd), "");
  // Bounded: past max_entries nothing more is remembered or read.
  FdPaths one(1);
  const int a = open("/dev/null", O_RDONLY);
  const int b = open("/dev/zero", O_RDONLY);
  EXPECT_EQ(one.Get(static_cast<uint32_t>(getpid()), a), "/dev/null");
  EXPECT_EQ(one.Get(static_cast<uint32_t>(getpid()), b), "");
  close(a);
  close(b);
}

}  // namespace
}  // namespace vigil
