#include "agent/settings.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

namespace vigil {
namespace {

TEST(SettingsTest, ConfigFileSetsEveryKey) {
  AgentConfig c;
  const char* text = R"(
# comment
listen = unix:/tmp/x.sock
interval = 2s
window = "5m"
store-max-records = 5000
syscalls-max-entries = 1024
syscalls-latency = off
syscalls-latency-sample = 16
verbose = true
)";
  ASSERT_TRUE(ApplyConfigText(text, "test.conf", &c).ok());
  EXPECT_EQ(c.listen.address, "unix:/tmp/x.sock");
  EXPECT_EQ(c.interval, absl::Seconds(2));
  EXPECT_EQ(c.window, absl::Minutes(5));
  EXPECT_EQ(c.store_max_records, 5000u);
  EXPECT_EQ(c.syscalls.max_entries, 1024u);
  EXPECT_FALSE(c.syscalls.measure_latency);
  EXPECT_EQ(c.syscalls.latency_sample_every, 16u);
  EXPECT_TRUE(c.verbose);
  EXPECT_TRUE(ValidateConfig(c).ok());
}

TEST(SettingsTest, ErrorsNameFileLineAndKey) {
  AgentConfig c;
  absl::Status s = ApplyConfigText("interval = 1s\nbogus = 3\n", "/etc/vigil/vigild.conf", &c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "/etc/vigil/vigild.conf:2: unknown key \"bogus\"");
  s = ApplyConfigText("window = forever\n", "f", &c);
  EXPECT_EQ(s.message(),
            "f:1: window \"forever\": expected a positive duration like 1s, 500ms, 10m");
  s = ApplyConfigText("just words\n", "f", &c);
  EXPECT_NE(s.message().find("f:1: expected \"key = value\""), std::string::npos) << s;
  EXPECT_FALSE(ApplyConfigText("syscalls-latency = sometimes\n", "f", &c).ok());
  EXPECT_FALSE(ApplyConfigText("syscalls-max-entries = 3\n", "f", &c).ok());
  for (const char* bad : {"0", "3", "-8", "2048", "1e3", "8x"}) {
    s = ApplyConfigText(absl::StrCat("syscalls-latency-sample = ", bad, "\n"), "f", &c);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  s = ApplyConfigText("syscalls-latency-sample = 12\n", "f", &c);
  EXPECT_EQ(s.message(),
            "f:1: syscalls-latency-sample \"12\": expected 1 or a power of two up to 1024");
}

TEST(SettingsTest, EveryAdvertisedSettingIsAccepted) {
  for (const SettingInfo& s : AllSettings()) {
    AgentConfig c;
    const char* value = s.takes_value ? "" : "true";
    absl::Status st = ApplySetting(s.name, value, &c);
    // Value-taking settings reject the empty value, but never as unknown.
    EXPECT_EQ(st.message().find("unknown key"), std::string::npos) << s.name;
  }
}

TEST(SettingsTest, OnDemandSessionsAreOffAndBoundedByDefault) {
  AgentConfig c;
  EXPECT_FALSE(c.ondemand.allow_trace);
  EXPECT_FALSE(c.ondemand.allow_probe);
  ASSERT_TRUE(ApplyConfigText("allow-trace = on\nsession-max = 2\nsession-max-duration = 30s\n"
                              "trace-max-events-per-second = 500\n",
                              "f", &c)
                  .ok());
  EXPECT_TRUE(c.ondemand.allow_trace);
  EXPECT_EQ(c.ondemand.max_sessions, 2);
  EXPECT_EQ(c.ondemand.max_duration, absl::Seconds(30));
  EXPECT_EQ(c.ondemand.trace_max_events_per_second, 500u);
  EXPECT_EQ(ApplyConfigText("session-max-duration = 0s\n", "f", &c).message(),
            "f:1: session-max-duration \"0s\": expected a duration from 1s to 24h, like 5m");
  EXPECT_FALSE(ApplyConfigText("session-max-duration = 25h\n", "f", &c).ok());
  EXPECT_FALSE(ApplyConfigText("session-max = 0\n", "f", &c).ok());
  EXPECT_FALSE(ApplyConfigText("trace-max-events-per-second = 0\n", "f", &c).ok());
}

TEST(SettingsTest, DebuginfodKeysReachTheSymbolizerConfig) {
  AgentConfig c;
  ASSERT_TRUE(ApplyConfigText("debuginfod-urls = http://a:8002 http://b:8002\n"
                              "debuginfod-cache-dir = /tmp/dbg\n"
                              "debuginfod-cache-max-bytes = 10485760\n"
                              "debuginfod-max-download-bytes = 1048576\n"
                              "debuginfod-timeout = 5s\n"
                              "debuginfod-retry-after = 1m\n",
                              "f", &c)
                  .ok());
  const DebuginfodConfig& d = c.profile.symbols.debuginfod;
  EXPECT_EQ(d.urls, "http://a:8002 http://b:8002");
  EXPECT_EQ(d.cache_dir, "/tmp/dbg");
  EXPECT_EQ(d.cache_max_bytes, 10485760u);
  EXPECT_EQ(d.max_download_bytes, 1048576u);
  EXPECT_EQ(d.timeout, absl::Seconds(5));
  EXPECT_EQ(d.retry_after, absl::Minutes(1));
  EXPECT_TRUE(ValidateConfig(c).ok());
  // One file larger than the whole cache could never be kept.
  c.profile.symbols.debuginfod.max_download_bytes = 20 << 20;
  EXPECT_FALSE(ValidateConfig(c).ok());
  EXPECT_FALSE(ApplySetting("debuginfod-cache-dir", "relative", &c).ok());
  EXPECT_FALSE(ApplySetting("debuginfod-cache-max-bytes", "12", &c).ok());
  EXPECT_FALSE(ApplySetting("debuginfod-urls", "", &c).ok());
}

TEST(SettingsTest, ProfileFaultPeriodIsBounded) {
  AgentConfig c;
  EXPECT_EQ(c.profile.fault_period, 64u);  // the default
  ASSERT_TRUE(ApplyConfigText("profile-fault-period = 1\n", "f", &c).ok());
  EXPECT_EQ(c.profile.fault_period, 1u);
  ASSERT_TRUE(ApplySetting("profile-fault-period", "0", &c).ok());  // off
  EXPECT_EQ(c.profile.fault_period, 0u);
  ASSERT_TRUE(ApplySetting("profile-fault-period", "1048576", &c).ok());
  EXPECT_EQ(c.profile.fault_period, 1u << 20);
  for (const char* bad : {"1048577", "4294967296", "-1", "64k", "", "1e3"}) {
    absl::Status s = ApplySetting("profile-fault-period", bad, &c);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(s.message(), absl::StrCat("profile-fault-period \"", bad,
                                        "\": expected an integer in [0, 1048576]"));
  }
  EXPECT_EQ(c.profile.fault_period, 1u << 20);  // a rejected value changes nothing
  absl::Status s =
      ApplyConfigText("profile-fault-period = 2000000\n", "/etc/vigil/vigild.conf", &c);
  EXPECT_EQ(s.message(),
            "/etc/vigil/vigild.conf:1: profile-fault-period \"2000000\": expected an integer in "
            "[0, 1048576]");
}

TEST(SettingsTest, ProfileMapMinBytesIsBounded) {
  AgentConfig c;
  EXPECT_EQ(c.profile.map_min_bytes, 1u << 20);  // the default
  ASSERT_TRUE(ApplySetting("profile-map-min-bytes", "64MiB", &c).ok());
  EXPECT_EQ(c.profile.map_min_bytes, 64u << 20);
  ASSERT_TRUE(ApplySetting("profile-map-min-bytes", "0", &c).ok());  // off
  EXPECT_EQ(c.profile.map_min_bytes, 0u);
  ASSERT_TRUE(ApplySetting("profile-map-min-bytes", "4096", &c).ok());
  EXPECT_EQ(c.profile.map_min_bytes, 4096u);
  for (const char* bad : {"4095", "2000GiB", "-1", "1 MiB", "", "1e6", "1TB"}) {
    absl::Status s = ApplySetting("profile-map-min-bytes", bad, &c);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(s.message(), absl::StrCat("profile-map-min-bytes \"", bad,
                                        "\": expected 0 (off) or a size from 4KiB to 1024GiB, "
                                        "like 1MiB"));
  }
  EXPECT_EQ(c.profile.map_min_bytes, 4096u);  // a rejected value changes nothing
}

TEST(SettingsTest, QueryShareBytesIsBoundedAndZeroTurnsItOff) {
  AgentConfig c;
  EXPECT_EQ(c.query_share_bytes, size_t{16} << 20);  // the default
  ASSERT_TRUE(ApplySetting("query-share-bytes", "0", &c).ok());
  EXPECT_EQ(c.query_share_bytes, 0u);
  ASSERT_TRUE(ApplySetting("query-share-bytes", "64KiB", &c).ok());
  EXPECT_EQ(c.query_share_bytes, size_t{64} << 10);
  for (const char* bad : {"65535", "2GiB", "-1", "", "off"}) {
    absl::Status s = ApplySetting("query-share-bytes", bad, &c);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(s.message(), absl::StrCat("query-share-bytes \"", bad,
                                        "\": expected 0 (off) or a size from 64KiB to 1GiB, "
                                        "like 16MiB"));
  }
  EXPECT_EQ(c.query_share_bytes, size_t{64} << 10);  // a rejected value changes nothing
}

TEST(SettingsTest, SyscallsStoreCoarsenIsBoundedAndZeroTurnsItOff) {
  AgentConfig c;
  EXPECT_EQ(c.syscalls.store_coarsen_span, absl::Minutes(1));  // the default
  ASSERT_TRUE(ApplySetting("syscalls-store-coarsen", "0", &c).ok());
  EXPECT_EQ(c.syscalls.store_coarsen_span, absl::ZeroDuration());
  ASSERT_TRUE(ApplySetting("syscalls-store-coarsen", "10s", &c).ok());
  EXPECT_EQ(c.syscalls.store_coarsen_span, absl::Seconds(10));
  for (const char* bad : {"500ms", "2h", "-1s", "", "off", "inf"}) {
    absl::Status s = ApplySetting("syscalls-store-coarsen", bad, &c);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(s.message(), absl::StrCat("syscalls-store-coarsen \"", bad,
                                        "\": expected 0 (off) or a duration from 1s to 1h, "
                                        "like 1m"));
  }
  EXPECT_EQ(c.syscalls.store_coarsen_span, absl::Seconds(10));  // a rejected value changes nothing
}

TEST(SettingsTest, ValidateCatchesCrossFieldMistakes) {
  AgentConfig c;
  c.interval = absl::Seconds(10);
  c.window = absl::Seconds(5);
  EXPECT_FALSE(ValidateConfig(c).ok());
  c = AgentConfig();
  c.listen.address = "0.0.0.0:7000";
  EXPECT_FALSE(ValidateConfig(c).ok());
  c.listen.insecure = true;
  EXPECT_TRUE(ValidateConfig(c).ok());
}

// Found by tests/fuzz/settings_fuzz: a flag's value (which may hold a
// newline) or a long line was echoed whole into the one-line error, by
// settings.cc, listen.cc and the spin settings (whose RE2 error quotes the
// pattern again).
TEST(SettingsTest, ErrorsStayOneShortLine) {
  auto one_short_line = [](const absl::Status& s) {
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(s.message().find('\n'), absl::string_view::npos) << s;
    EXPECT_LE(s.message().size(), 512u) << s;
  };
  const std::string big(100000, 'x');
  AgentConfig c;
  one_short_line(ApplySetting("spin-ignore-comm", "a\nb(", &c));
  one_short_line(ApplySetting("spin-ignore-comm", big + "(", &c));
  one_short_line(ApplySetting("spin-min-duration", "1\ns", &c));
  one_short_line(ApplySetting("spin", "o\nn", &c));
  one_short_line(ApplySetting("window", "1\nm", &c));
  one_short_line(ApplySetting("bogus\nkey", "1", &c));
  one_short_line(ApplySetting("sample-hz", big, &c));
  one_short_line(ApplyConfigText(big + "\n", "f", &c));
  one_short_line(ApplyConfigText("spin-ignore-cgroup = " + big + "(\n", "f", &c));
  AgentConfig l;
  ASSERT_TRUE(ApplySetting("listen", "a\nb:99999", &l).ok());
  one_short_line(ValidateConfig(l));
  ASSERT_TRUE(ApplySetting("listen", "a\nb:80", &l).ok());
  one_short_line(ValidateConfig(l));
  AgentConfig m;
  ASSERT_TRUE(ApplySetting("metrics-listen", big, &m).ok());
  one_short_line(ValidateConfig(m));
  // What the user typed is still there, escaped.
  const absl::Status s = ApplySetting("spin-ignore-comm", "a\nb(", &c);
  EXPECT_EQ(s.message().find("spin-ignore-comm \"a\\nb(\" does not compile"), 0u) << s;
}

}  // namespace
}  // namespace vigil
