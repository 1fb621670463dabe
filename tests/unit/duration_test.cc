// ParseBoundedDuration: the one duration parser of vigild and vigil.
#include "common/duration.h"

#include <string>

#include "gtest/gtest.h"

namespace vigil {
namespace {

const absl::Duration kMin = absl::Nanoseconds(1);
const absl::Duration kMax = absl::Hours(1);

TEST(DurationTest, AcceptsInRange) {
  EXPECT_EQ(*ParseBoundedDuration("5s", kMin, kMax, "--timeout"), absl::Seconds(5));
  EXPECT_EQ(*ParseBoundedDuration("1h", kMin, kMax, "--timeout"), absl::Hours(1));
  EXPECT_EQ(*ParseBoundedDuration("1m30s", kMin, kMax, "--timeout"), absl::Seconds(90));
  EXPECT_EQ(*ParseBoundedDuration("100ms", absl::Milliseconds(100), kMax, "--every"),
            absl::Milliseconds(100));
  EXPECT_EQ(*ParseBoundedDuration("0s", absl::ZeroDuration(), kMax, "x"), absl::ZeroDuration());
}

TEST(DurationTest, RejectsWithOneLineNamingFlagAndValue) {
  struct Case {
    const char* text;
    absl::Duration min;
    const char* want;
  };
  for (const Case& c : {
           Case{"inf", kMin, "--timeout \"inf\": expected a finite duration, at most 1h"},
           Case{"-inf", kMin, "--timeout \"-inf\": expected a finite duration, at most 1h"},
           Case{"-5s", kMin, "--timeout \"-5s\": expected a positive duration like 1s, 500ms, 10m"},
           Case{"0s", kMin, "--timeout \"0s\": expected a positive duration like 1s, 500ms, 10m"},
           Case{"0", kMin, "--timeout \"0\": expected a positive duration like 1s, 500ms, 10m"},
           Case{"soon", kMin,
                "--timeout \"soon\": expected a positive duration like 1s, 500ms, 10m"},
           Case{"5", kMin, "--timeout \"5\": expected a positive duration like 1s, 500ms, 10m"},
           Case{"", kMin, "--timeout \"\": expected a positive duration like 1s, 500ms, 10m"},
           Case{"2h", kMin, "--timeout \"2h\": expected a duration of at most 1h"},
           Case{"9999999999h", kMin,
                "--timeout \"9999999999h\": expected a duration of at most 1h"},
           Case{"1ms", absl::Milliseconds(100),
                "--timeout \"1ms\": expected a duration of at least 100ms like 1s, 10m"},
           Case{"-1s", absl::ZeroDuration(),
                "--timeout \"-1s\": expected a non-negative duration like 1s, 500ms, 10m"},
       }) {
    absl::StatusOr<absl::Duration> d = ParseBoundedDuration(c.text, c.min, kMax, "--timeout");
    ASSERT_FALSE(d.ok()) << c.text;
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_EQ(d.status().message(), c.want);
  }
}

TEST(DurationTest, LongOrControlValuesStayOneShortLine) {
  const std::string long_value(500, 'x');
  absl::StatusOr<absl::Duration> d = ParseBoundedDuration(long_value, kMin, kMax, "--since");
  ASSERT_FALSE(d.ok());
  const std::string msg(d.status().message());
  EXPECT_LT(msg.size(), 160u) << msg;
  EXPECT_NE(msg.find("--since \"" + std::string(64, 'x') + "...\""), std::string::npos) << msg;

  d = ParseBoundedDuration("1s\nboom", kMin, kMax, "--since");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(std::string(d.status().message()).find('\n'), std::string::npos);
}

}  // namespace
}  // namespace vigil
