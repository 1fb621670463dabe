// LibbpfLogCapture: a load's error hint carries that load's libbpf warnings
// only. libbpf warns (without privileges) when an object file is missing.
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "agent/bpf_util.h"

namespace vigil {
namespace {

// Makes libbpf print one warning naming `name`.
void WarnAbout(const std::string& name) {
  bpf_object* obj = bpf_object__open_file(("/nonexistent/" + name).c_str(), nullptr);
  ASSERT_EQ(obj, nullptr);
}

class LibbpfLogTest : public testing::Test {
 protected:
  void SetUp() override { ConfigureLibbpfLogging(false); }
};

TEST_F(LibbpfLogTest, EachCaptureHasOnlyItsOwnWarnings) {
  WarnAbout("before.bpf.o");  // no capture: dropped
  {
    LibbpfLogCapture first;
    WarnAbout("first.bpf.o");
    EXPECT_TRUE(absl::StrContains(first.Warnings(), "first.bpf.o")) << first.Warnings();
    EXPECT_FALSE(absl::StrContains(first.Warnings(), "before.bpf.o")) << first.Warnings();
    absl::Status s = first.Annotate(absl::InternalError("loading first.bpf.o failed"));
    EXPECT_TRUE(absl::StartsWith(s.message(), "loading first.bpf.o failed [libbpf: ")) << s;
    EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  }
  LibbpfLogCapture second;
  EXPECT_EQ(second.Warnings(), "");
  absl::Status s = second.Annotate(absl::PermissionDeniedError("loading second.bpf.o"));
  EXPECT_EQ(s.message(), "loading second.bpf.o");  // no hint without warnings
  WarnAbout("second.bpf.o");
  EXPECT_TRUE(absl::StrContains(second.Warnings(), "second.bpf.o")) << second.Warnings();
  EXPECT_FALSE(absl::StrContains(second.Warnings(), "first.bpf.o")) << second.Warnings();
  EXPECT_TRUE(second.Annotate(absl::OkStatus()).ok());
}

TEST_F(LibbpfLogTest, InnermostCaptureOnTheThreadGetsTheLines) {
  LibbpfLogCapture outer;
  {
    LibbpfLogCapture inner;
    WarnAbout("inner.bpf.o");
    EXPECT_TRUE(absl::StrContains(inner.Warnings(), "inner.bpf.o"));
  }
  EXPECT_EQ(outer.Warnings(), "");
  WarnAbout("outer.bpf.o");
  EXPECT_TRUE(absl::StrContains(outer.Warnings(), "outer.bpf.o"));
}

TEST_F(LibbpfLogTest, AnotherThreadsWarningsAreNotCaptured) {
  LibbpfLogCapture mine;
  std::thread other([] {
    LibbpfLogCapture theirs;
    WarnAbout("theirs.bpf.o");
    EXPECT_TRUE(absl::StrContains(theirs.Warnings(), "theirs.bpf.o"));
  });
  other.join();
  std::thread uncaptured([] { WarnAbout("uncaptured.bpf.o"); });
  uncaptured.join();
  EXPECT_EQ(mine.Warnings(), "");
}

}  // namespace
}  // namespace vigil
