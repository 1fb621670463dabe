#include "common/safe_text.h"

#include <gtest/gtest.h>

#include "common/safe_proto.h"
#include "vigil/v1/vigil.pb.h"

namespace vigil {
namespace {

TEST(SafeTextTest, ValidUtf8PassesThrough) {
  for (const char* s : {"", "kafka-poll", "héllo", "日本語", "emoji \xf0\x9f\x94\xa5"}) {
    EXPECT_TRUE(IsSafeText(s)) << s;
    EXPECT_EQ(SafeText(s), s);
  }
}

TEST(SafeTextTest, ControlsAndInvalidBytesAreEscapedVisibly) {
  EXPECT_EQ(SafeText("\x1b[31mred"), "\\x1b[31mred");
  EXPECT_EQ(SafeText(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(SafeText("tab\there\nnl\x7f"), "tab\\x09here\\x0anl\\x7f");
  EXPECT_EQ(SafeText("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(SafeText("\xc3"), "\\xc3");                    // truncated sequence
  EXPECT_EQ(SafeText("\xc0\xaf"), "\\xc0\\xaf");           // overlong '/'
  EXPECT_EQ(SafeText("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // UTF-16 surrogate
  EXPECT_EQ(SafeText("\xc2\x9b"), "\\xc2\\x9b");           // C1 CSI
  EXPECT_FALSE(IsSafeText("\x1b"));
  // Whatever goes in, what comes out is safe.
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  EXPECT_TRUE(IsSafeText(SafeText(all)));
}

TEST(SafeTextTest, EveryStringFieldOfAResponseIsMadeSafe) {
  v1::SyscallsResponse r;
  r.set_hostname("host\x1b");
  v1::ThreadSyscalls* t = r.add_threads();
  t->set_comm(
      "\xff\xfe"
      "evil");
  t->set_process_comm("ok");
  t->add_syscalls()->set_name("read\n");
  MakeStringsSafe(&r);
  EXPECT_EQ(r.hostname(), "host\\x1b");
  EXPECT_EQ(r.threads(0).comm(), "\\xff\\xfeevil");
  EXPECT_EQ(r.threads(0).process_comm(), "ok");
  EXPECT_EQ(r.threads(0).syscalls(0).name(), "read\\x0a");
  std::string wire;
  ASSERT_TRUE(r.SerializeToString(&wire));
  v1::SyscallsResponse back;
  EXPECT_TRUE(back.ParseFromString(wire));  // proto3 refuses invalid UTF-8
}

}  // namespace
}  // namespace vigil
