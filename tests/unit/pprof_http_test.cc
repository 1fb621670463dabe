// /debug/pprof's request parsing and replies, without a server or an agent.
#include "agent/metrics/pprof_http.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <string>

#include "absl/strings/match.h"
#include "perftools/profile.pb.h"

namespace vigil {
namespace {

// A source that records what it was asked and answers one CPU stack.
struct FakeProfiler {
  v1::ProfileRequest last;
  absl::Status offered_memory = absl::FailedPreconditionError("page-fault sampling is off");

  PprofEndpoints Endpoints(absl::Duration window) {
    return PprofEndpoints(
        [this](const v1::ProfileRequest& req) -> absl::StatusOr<v1::ProfileResponse> {
          last = req;
          if (req.kind() == v1::PROFILE_KIND_MEMORY && !offered_memory.ok()) return offered_memory;
          v1::ProfileResponse r;
          r.set_sample_hz(100);
          auto* f = r.add_frames();
          f->set_name("spin");
          f->set_module("/usr/bin/app");
          auto* s = r.add_stacks();
          s->add_frame_ids(0);
          s->set_samples(7);
          s->set_pid(42);
          s->set_tid(43);
          s->set_comm("worker");
          s->set_process_comm("app");
          return r;
        },
        [this](v1::ProfileKind kind) {
          return kind == v1::PROFILE_KIND_MEMORY ? offered_memory : absl::OkStatus();
        },
        window);
  }
};

std::string Gunzip(const std::string& gz) {
  z_stream zs = {};
  EXPECT_EQ(inflateInit2(&zs, 15 + 16), Z_OK);
  std::string out(1 << 20, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  zs.avail_in = static_cast<uInt>(gz.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  inflateEnd(&zs);
  return out;
}

TEST(PprofHttpTest, ProfileIsTheLastSecondsAsGzippedProfileProtoWithLabels) {
  FakeProfiler fake;
  const PprofEndpoints ep = fake.Endpoints(absl::Minutes(10));
  const HttpReply r =
      ep.Serve("/debug/pprof/profile", {{"seconds", "5"}, {"pid", "42"}, {"comm", "^work"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(fake.last.kind(), v1::PROFILE_KIND_CPU);
  EXPECT_EQ(fake.last.range().since_ago_ns(), 5'000'000'000);
  EXPECT_EQ(fake.last.pid(), 42u);
  EXPECT_EQ(fake.last.comm_regex(), "^work");
  perftools::profiles::Profile p;
  ASSERT_TRUE(p.ParseFromString(Gunzip(r.body)));
  ASSERT_EQ(p.sample_size(), 1);
  std::map<std::string, std::string> labels;
  for (const auto& l : p.sample(0).label()) {
    labels[p.string_table(l.key())] = l.str() ? p.string_table(l.str()) : std::to_string(l.num());
  }
  EXPECT_EQ(labels["pid"], "42");
  EXPECT_EQ(labels["tid"], "43");
  EXPECT_EQ(labels["comm"], "worker");
  EXPECT_EQ(labels["process_comm"], "app");
}

TEST(PprofHttpTest, DefaultIsGoThirtySecondsCutToAShortWindow) {
  FakeProfiler fake;
  ASSERT_EQ(fake.Endpoints(absl::Minutes(10)).Serve("/debug/pprof/profile", {}).status, 200);
  EXPECT_EQ(fake.last.range().since_ago_ns(), 30'000'000'000);
  ASSERT_EQ(fake.Endpoints(absl::Seconds(20)).Serve("/debug/pprof/profile", {}).status, 200);
  EXPECT_EQ(fake.last.range().since_ago_ns(), 20'000'000'000);
}

TEST(PprofHttpTest, BadQueriesAre400WithOneLine) {
  FakeProfiler fake;
  const PprofEndpoints ep = fake.Endpoints(absl::Minutes(10));
  const HttpParams bad[] = {
      {{"seconds", "0"}},   {{"seconds", "-1"}},  {{"seconds", "abc"}},
      {{"seconds", "601"}}, {{"seconds", "1.5"}}, {{"seconds", ""}},
      {{"pid", "0"}},       {{"tid", "-3"}},      {{"pid", "4294967296"}},
      {{"comm", "("}},      {{"debug", "1"}},     {{"seconds", "5"}, {"seconds", "6"}},
  };
  for (const HttpParams& q : bad) {
    const HttpReply r = ep.Serve("/debug/pprof/profile", q);
    EXPECT_EQ(r.status, 400) << q.begin()->first << "=" << q.begin()->second;
    EXPECT_EQ(std::count(r.body.begin(), r.body.end(), '\n'), 1) << r.body;
  }
  // The window is named when seconds goes beyond it.
  EXPECT_TRUE(absl::StrContains(ep.Serve("/debug/pprof/profile", {{"seconds", "601"}}).body,
                                "keeps 600 s"));
  // Control characters in what the client sent are not echoed raw.
  const HttpReply esc = ep.Serve("/debug/pprof/profile", {{"x\x1b[2J", "1"}});
  EXPECT_EQ(esc.status, 400);
  EXPECT_FALSE(absl::StrContains(esc.body, "\x1b")) << esc.body;
}

TEST(PprofHttpTest, WhatIsNotOfferedIs404AndSaysWhy) {
  FakeProfiler fake;
  const PprofEndpoints ep = fake.Endpoints(absl::Minutes(10));
  EXPECT_EQ(ep.Serve("/debug/pprof/heap", {}).status, 404);
  const HttpReply faults = ep.Serve("/debug/pprof/faults", {});
  EXPECT_EQ(faults.status, 404);
  EXPECT_EQ(faults.body, "page-fault sampling is off\n");
  const HttpReply index = ep.Serve("/debug/pprof/", {});
  EXPECT_EQ(index.status, 200);
  EXPECT_TRUE(absl::StrContains(index.body, "<a href=\"profile?seconds=30\">")) << index.body;
  EXPECT_TRUE(absl::StrContains(index.body, "faults: not offered here: page-fault sampling is off"))
      << index.body;
  fake.offered_memory = absl::OkStatus();
  EXPECT_EQ(ep.Serve("/debug/pprof/faults", {{"seconds", "10"}}).status, 200);
  EXPECT_EQ(fake.last.kind(), v1::PROFILE_KIND_MEMORY);
}

}  // namespace
}  // namespace vigil
