// Pure profiler logic: merging intervals, self vs total, filters, pprof and
// folded encodings, the flame graph page, and the symbol cache's lifecycle
// (with a fake symbolizer and a fake /proc).
#include <gtest/gtest.h>
#include <zlib.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "agent/profile/profile_aggregate.h"
#include "agent/profile/symbolizer.h"
#include "client/format.h"
#include "client/profile_export.h"

namespace vigil {
namespace {

FramePtr F(const std::string& name, const std::string& module, bool kernel = false) {
  return std::make_shared<const Frame>(Frame::Of(name, module, 0, kernel));
}

ProfileStackRecord Rec(uint32_t tgid, uint32_t tid, uint64_t samples, const char* comm = "app") {
  ProfileStackRecord r;
  r.tgid = tgid;
  r.tid = tid;
  r.samples = samples;
  strncpy(r.comm, comm, sizeof(r.comm) - 1);
  strncpy(r.pcomm, comm, sizeof(r.pcomm) - 1);
  return r;
}

ProfileQuery Query(v1::FrameFilter frames = v1::FRAME_FILTER_ALL) {
  ProfileQuery q;
  q.frames = frames;
  q.top = 100;
  return q;
}

const v1::HotFunction* Find(const v1::HotResponse& r, const std::string& name) {
  for (const auto& f : r.functions()) {
    if (f.name() == name) return &f;
  }
  return nullptr;
}

class ProfileMergeTest : public ::testing::Test {
 protected:
  FramePtr main_ = F("main", "/bin/app");
  FramePtr work_ = F("ns::Work(int)", "/bin/app");
  FramePtr lib_ = F("ns::Lib()", "/lib/libx.so");
  FramePtr rec_ = F("Recurse", "/bin/app");
  FramePtr sys_ = F("__x64_sys_read", "[kernel]", true);
  FramePtr entry_ = F("entry_SYSCALL_64", "[kernel]", true);
};

TEST_F(ProfileMergeTest, SelfAndTotalAcrossIntervals) {
  ProfileInterval a, b;
  a.Append(Rec(10, 10, 6), {}, {work_, main_});  // Work self
  a.Append(Rec(10, 10, 2), {}, {lib_, work_, main_});
  b.Append(Rec(10, 10, 2), {}, {lib_, main_});
  b.Append(Rec(10, 11, 3), {sys_, entry_}, {main_});  // in the kernel
  ProfileQuery q = Query();
  HotMerger m(q);
  m.Add(a);
  m.Add(b);
  v1::HotResponse r;
  m.Finish(&r);
  EXPECT_EQ(r.samples(), 13u);
  const v1::HotFunction* work = Find(r, "ns::Work(int)");
  ASSERT_NE(work, nullptr);
  EXPECT_EQ(work->self_samples(), 6u);
  EXPECT_EQ(work->total_samples(), 8u);
  EXPECT_NEAR(work->self_pct(), 100.0 * 6 / 13, 1e-9);
  const v1::HotFunction* lib = Find(r, "ns::Lib()");
  ASSERT_NE(lib, nullptr);
  EXPECT_EQ(lib->self_samples(), 4u);
  EXPECT_EQ(lib->module(), "/lib/libx.so");
  const v1::HotFunction* mainf = Find(r, "main");
  ASSERT_NE(mainf, nullptr);
  EXPECT_EQ(mainf->self_samples(), 0u);
  EXPECT_EQ(mainf->total_samples(), 13u);
  EXPECT_DOUBLE_EQ(mainf->total_pct(), 100.0);
  const v1::HotFunction* sys = Find(r, "__x64_sys_read");
  ASSERT_NE(sys, nullptr);
  EXPECT_TRUE(sys->kernel());
  EXPECT_EQ(sys->self_samples(), 3u);
  // Ranked by self samples.
  EXPECT_EQ(r.functions(0).name(), "ns::Work(int)");
  EXPECT_EQ(r.functions(1).name(), "ns::Lib()");
}

TEST_F(ProfileMergeTest, RecursionCountsOncePerSampleInTotal) {
  ProfileInterval a;
  a.Append(Rec(1, 1, 5), {}, {rec_, rec_, rec_, main_});
  ProfileQuery q = Query();
  HotMerger m(q);
  m.Add(a);
  v1::HotResponse r;
  m.Finish(&r);
  const v1::HotFunction* f = Find(r, "Recurse");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->self_samples(), 5u);
  EXPECT_EQ(f->total_samples(), 5u);
}

TEST_F(ProfileMergeTest, UserOnlyAndKernelOnly) {
  ProfileInterval a;
  a.Append(Rec(1, 1, 4), {sys_, entry_}, {work_, main_});
  a.Append(Rec(1, 1, 6), {}, {work_, main_});
  ProfileQuery user = Query(v1::FRAME_FILTER_USER);
  HotMerger mu(user);
  mu.Add(a);
  v1::HotResponse ru;
  mu.Finish(&ru);
  EXPECT_EQ(ru.samples(), 10u);
  EXPECT_EQ(Find(ru, "ns::Work(int)")->self_samples(), 10u);
  EXPECT_EQ(Find(ru, "__x64_sys_read"), nullptr);

  ProfileQuery kern = Query(v1::FRAME_FILTER_KERNEL);
  HotMerger mk(kern);
  mk.Add(a);
  v1::HotResponse rk;
  mk.Finish(&rk);
  EXPECT_EQ(rk.samples(), 4u);
  EXPECT_EQ(rk.samples_without_frames(), 6u);
  EXPECT_EQ(Find(rk, "__x64_sys_read")->self_samples(), 4u);
  EXPECT_EQ(Find(rk, "entry_SYSCALL_64")->total_samples(), 4u);
  EXPECT_EQ(Find(rk, "main"), nullptr);
}

TEST_F(ProfileMergeTest, FiltersByPidTidAndComm) {
  ProfileInterval a;
  a.Append(Rec(1, 1, 1, "alpha"), {}, {main_});
  a.Append(Rec(2, 2, 2, "beta"), {}, {main_});
  a.Append(Rec(2, 3, 4, "beta"), {}, {main_});
  ProfileQuery q = Query();
  q.pid = 2;
  HotMerger m(q);
  m.Add(a);
  v1::HotResponse r;
  m.Finish(&r);
  EXPECT_EQ(r.samples(), 6u);

  ProfileQuery t = Query();
  t.tid = 3;
  HotMerger mt(t);
  mt.Add(a);
  v1::HotResponse rt;
  mt.Finish(&rt);
  EXPECT_EQ(rt.samples(), 4u);

  ProfileQuery c = Query();
  c.comm = std::make_unique<RE2>("^al");
  HotMerger mc(c);
  mc.Add(a);
  v1::HotResponse rc;
  mc.Finish(&rc);
  EXPECT_EQ(rc.samples(), 1u);
}

TEST_F(ProfileMergeTest, TopCutsAndCountsOmitted) {
  ProfileInterval a;
  a.Append(Rec(1, 1, 3), {}, {work_, main_});
  a.Append(Rec(1, 1, 2), {}, {lib_, main_});
  ProfileQuery q = Query();
  q.top = 1;
  HotMerger m(q);
  m.Add(a);
  v1::HotResponse r;
  m.Finish(&r);
  ASSERT_EQ(r.functions_size(), 1);
  EXPECT_EQ(r.functions(0).name(), "ns::Work(int)");
  EXPECT_EQ(r.functions_omitted(), 2u);
}

TEST_F(ProfileMergeTest, UnnamedFramesShowModuleAndOffset) {
  auto anon = std::make_shared<const Frame>(Frame::Of("", "/bin/stripped", 0x1234));
  ProfileInterval a;
  a.Append(Rec(1, 1, 1), {}, {anon, main_});
  ProfileQuery q = Query();
  HotMerger m(q);
  m.Add(a);
  v1::HotResponse r;
  m.Finish(&r);
  EXPECT_NE(Find(r, "/bin/stripped+0x1234"), nullptr);
}

TEST_F(ProfileMergeTest, TruncatedStacksAreCounted) {
  ProfileInterval a;
  ProfileStackRecord t = Rec(1, 1, 3);
  t.truncated = true;
  a.Append(t, {}, {work_});
  a.Append(Rec(1, 1, 1), {}, {work_, main_, F("__libc_start_call_main", "/lib/libc.so.6")});
  ProfileQuery q = Query();
  HotMerger m(q);
  m.Add(a);
  v1::HotResponse r;
  m.Finish(&r);
  EXPECT_EQ(r.truncated_samples(), 3u);
}

TEST_F(ProfileMergeTest, InternedAndPlainFramesOfOneFunctionShareARow) {
  auto symbol = std::make_shared<const FrameSymbol>(FrameSymbol{work_->name(), work_->module(), 7});
  auto interned = std::make_shared<Frame>(*work_);
  interned->symbol = symbol;
  auto interned2 = std::make_shared<Frame>(*work_);
  interned2->offset = 12;
  interned2->symbol = symbol;
  ProfileInterval a, b;
  a.Append(Rec(1, 1, 2), {}, {interned, main_});
  b.Append(Rec(1, 1, 3), {}, {work_, main_});  // fn_id 0: table was full
  b.Append(Rec(1, 1, 4), {}, {interned2, main_});
  ProfileQuery q = Query();
  HotMerger m(q);
  m.Add(a);
  m.Add(b);
  v1::HotResponse r;
  m.Finish(&r);
  int rows = 0;
  for (const auto& f : r.functions()) rows += f.name() == "ns::Work(int)";
  EXPECT_EQ(rows, 1);
  EXPECT_EQ(Find(r, "ns::Work(int)")->self_samples(), 9u);
}

TEST_F(ProfileMergeTest, ProfileMergerSumsSameStackAcrossIntervals) {
  ProfileInterval a, b;
  a.Append(Rec(1, 1, 2), {}, {work_, main_});
  b.Append(Rec(1, 1, 3), {}, {F("ns::Work(int)", "/bin/app"), F("main", "/bin/app")});
  b.Append(Rec(1, 2, 1), {}, {work_, main_});
  ProfileQuery q = Query();
  ProfileMerger m(q);
  m.Add(a);
  m.Add(b);
  v1::ProfileResponse r;
  m.Finish(&r);
  EXPECT_EQ(r.samples(), 6u);
  EXPECT_EQ(r.frames_size(), 2);  // equal frames from different caches fold
  ASSERT_EQ(r.stacks_size(), 2);  // one per thread
  EXPECT_EQ(r.stacks(0).samples(), 5u);
  EXPECT_EQ(r.stacks(0).tid(), 1u);
  ASSERT_EQ(r.stacks(0).frame_ids_size(), 2);
  EXPECT_EQ(r.frames(static_cast<int>(r.stacks(0).frame_ids(0))).name(), "ns::Work(int)");
}

// CPU and page-fault records of one interval never mix: each query sees
// only its kind, and a fault query reports bytes.
TEST_F(ProfileMergeTest, KindsAreMergedApart) {
  ProfileInterval a;
  a.Append(Rec(1, 1, 10), {}, {work_, main_});  // CPU
  ProfileStackRecord fault = Rec(1, 1, 3);
  fault.kind = PROFILE_KIND_FAULT;
  a.Append(fault, {}, {lib_, main_});
  fault.samples = 1;
  a.Append(fault, {}, {work_, main_});
  ProfileQuery cpu = Query();
  HotMerger hc(cpu);
  hc.Add(a);
  v1::HotResponse rc;
  hc.Finish(&rc);
  EXPECT_EQ(rc.kind(), v1::PROFILE_KIND_CPU);
  EXPECT_EQ(rc.samples(), 10u);
  EXPECT_EQ(rc.fault_bytes(), 0u);
  EXPECT_EQ(Find(rc, "ns::Lib()"), nullptr);
  EXPECT_EQ(Find(rc, "ns::Work(int)")->self_fault_bytes(), 0u);

  ProfileQuery mem = Query();
  mem.kind = PROFILE_KIND_FAULT;
  mem.fault_period = 64;
  HotMerger hm(mem);
  hm.Add(a);
  v1::HotResponse rm;
  hm.Finish(&rm);
  EXPECT_EQ(rm.kind(), v1::PROFILE_KIND_MEMORY);
  EXPECT_EQ(rm.samples(), 4u);
  EXPECT_EQ(rm.fault_period(), 64u);
  EXPECT_EQ(rm.fault_bytes(), 4u * 64 * 4096);
  const v1::HotFunction* lib = Find(rm, "ns::Lib()");
  ASSERT_NE(lib, nullptr);
  EXPECT_EQ(lib->self_samples(), 3u);
  EXPECT_EQ(lib->self_fault_bytes(), 3u * 64 * 4096);
  EXPECT_EQ(Find(rm, "main")->total_fault_bytes(), 4u * 64 * 4096);
  EXPECT_EQ(rm.functions(0).name(), "ns::Lib()");  // ranked by self

  ProfileMerger pm(mem);
  pm.Add(a);
  v1::ProfileResponse pr;
  pm.Finish(&pr);
  EXPECT_EQ(pr.kind(), v1::PROFILE_KIND_MEMORY);
  EXPECT_EQ(pr.samples(), 4u);
  EXPECT_EQ(pr.fault_bytes(), 4u * 64 * 4096);
  ASSERT_EQ(pr.stacks_size(), 2);
  EXPECT_EQ(pr.stacks(0).samples(), 3u);
  EXPECT_EQ(pr.stacks(0).fault_bytes(), 3u * 64 * 4096);
  ProfileMerger pc(cpu);
  pc.Add(a);
  v1::ProfileResponse prc;
  pc.Finish(&prc);
  EXPECT_EQ(prc.samples(), 10u);
  EXPECT_EQ(prc.stacks(0).fault_bytes(), 0u);
}

v1::ProfileResponse SampleProfile() {
  v1::ProfileResponse r;
  auto add_frame = [&](const std::string& n, const std::string& m, bool k) {
    auto* f = r.add_frames();
    f->set_name(n);
    f->set_module(m);
    f->set_kernel(k);
  };
  add_frame("ns::Work(int)", "/bin/app", false);  // 0
  add_frame("main", "/bin/app", false);           // 1
  add_frame("", "/lib/libx.so", false);           // 2 (unnamed)
  r.mutable_frames(2)->set_offset(0xab);
  add_frame("a;b", "/bin/app", false);  // 3: ';' in a name
  auto add_stack = [&](std::vector<uint32_t> ids, uint64_t n, uint32_t tid) {
    auto* s = r.add_stacks();
    for (uint32_t id : ids) s->add_frame_ids(id);
    s->set_samples(n);
    s->set_pid(7);
    s->set_tid(tid);
    s->set_comm("app");
  };
  add_stack({0, 1}, 5, 7);
  add_stack({0, 1}, 2, 8);  // same frames, other thread
  add_stack({2, 1}, 1, 7);
  add_stack({3, 1}, 1, 7);
  r.set_samples(9);
  r.set_sample_hz(100);
  return r;
}

TEST(ProfileExportTest, FoldedIsRootFirstWithSummedCounts) {
  const std::string folded = cli::ToFolded(SampleProfile());
  EXPECT_EQ(folded,
            "main;/lib/libx.so+0xab 1\n"
            "main;a:b 1\n"
            "main;ns::Work(int) 7\n");
}

std::string Gunzip(const std::string& gz) {
  z_stream zs = {};
  inflateInit2(&zs, 15 + 16);
  std::string out(1 << 20, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  zs.avail_in = static_cast<uInt>(gz.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = inflate(&zs, Z_FINISH);
  inflateEnd(&zs);
  EXPECT_EQ(rc, Z_STREAM_END);
  out.resize(zs.total_out);
  return out;
}

TEST(ProfileExportTest, PprofRoundTripsThroughGzip) {
  const perftools::profiles::Profile p = ToPprof(SampleProfile());
  absl::StatusOr<std::string> gz = Gzip(p.SerializeAsString());
  ASSERT_TRUE(gz.ok());
  ASSERT_GE(gz->size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>((*gz)[0]), 0x1f);  // gzip magic
  EXPECT_EQ(static_cast<unsigned char>((*gz)[1]), 0x8b);
  perftools::profiles::Profile back;
  ASSERT_TRUE(back.ParseFromString(Gunzip(*gz)));
  ASSERT_GT(back.string_table_size(), 0);
  EXPECT_EQ(back.string_table(0), "");
  ASSERT_EQ(back.sample_type_size(), 2);
  EXPECT_EQ(back.string_table(back.sample_type(0).type()), "samples");
  EXPECT_EQ(back.string_table(back.sample_type(1).unit()), "nanoseconds");
  EXPECT_EQ(back.period(), 10000000);  // 100 Hz
  ASSERT_EQ(back.sample_size(), 4);
  EXPECT_EQ(back.sample(0).value(0), 5);
  EXPECT_EQ(back.sample(0).value(1), 5 * 10000000LL);
  // Location ids resolve to functions with the right names, leaf first.
  std::map<uint64_t, std::string> fn_names;
  for (const auto& f : back.function()) fn_names[f.id()] = back.string_table(f.name());
  std::map<uint64_t, uint64_t> loc_fn;
  for (const auto& l : back.location()) {
    ASSERT_EQ(l.line_size(), 1);
    EXPECT_NE(l.mapping_id(), 0u);
    loc_fn[l.id()] = l.line(0).function_id();
  }
  EXPECT_EQ(fn_names[loc_fn[back.sample(0).location_id(0)]], "ns::Work(int)");
  EXPECT_EQ(fn_names[loc_fn[back.sample(0).location_id(1)]], "main");
  EXPECT_EQ(fn_names[loc_fn[back.sample(2).location_id(0)]], "/lib/libx.so+0xab");
  // Two modules: two mappings.
  EXPECT_EQ(back.mapping_size(), 2);
}

TEST(ProfileExportTest, MemoryPprofCountsFaultsAndBytes) {
  v1::ProfileResponse r = SampleProfile();
  r.set_kind(v1::PROFILE_KIND_MEMORY);
  r.set_fault_period(64);
  const perftools::profiles::Profile p = ToPprof(r);
  ASSERT_EQ(p.sample_type_size(), 2);
  EXPECT_EQ(p.string_table(p.sample_type(0).type()), "faults");
  EXPECT_EQ(p.string_table(p.sample_type(0).unit()), "count");
  EXPECT_EQ(p.string_table(p.sample_type(1).type()), "fault_bytes");
  EXPECT_EQ(p.string_table(p.sample_type(1).unit()), "bytes");
  EXPECT_EQ(p.string_table(p.period_type().type()), "faults");
  EXPECT_EQ(p.period(), 64);
  ASSERT_EQ(p.sample_size(), 4);
  EXPECT_EQ(p.sample(0).value(0), 5 * 64);
  EXPECT_EQ(p.sample(0).value(1), 5 * 64 * 4096);
}

TEST(ProfileExportTest, MemoryHotTableAndFlameGraphSpeakBytes) {
  v1::HotResponse h;
  h.set_kind(v1::PROFILE_KIND_MEMORY);
  h.set_fault_period(64);
  h.set_samples(1024);
  h.set_fault_bytes(1024ull * 64 * 4096);
  h.mutable_covered()->set_intervals(4);
  h.mutable_covered()->set_start_unix_ns(1000000000);
  h.mutable_covered()->set_end_unix_ns(5000000000);
  v1::HotFunction* f = h.add_functions();
  f->set_name("TouchPages(unsigned long, double)");
  f->set_module("/bin/app");
  f->set_self_samples(1024);
  f->set_total_samples(1024);
  f->set_self_pct(100);
  f->set_total_pct(100);
  f->set_self_fault_bytes(1024ull * 64 * 4096);
  f->set_total_fault_bytes(1024ull * 64 * 4096);
  const std::string t = cli::FormatHot(h);
  EXPECT_NE(t.find("1024 page-fault samples of 1 per 64 faults: 256.0 MiB newly touched"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("self bytes"), std::string::npos) << t;
  EXPECT_NE(t.find("256.0 MiB    256.0 MiB  TouchPages"), std::string::npos) << t;
  EXPECT_EQ(cli::HumanBytes(0), "0 B");
  EXPECT_EQ(cli::HumanBytes(1023), "1023 B");
  EXPECT_EQ(cli::HumanBytes(4096), "4.0 KiB");
  EXPECT_EQ(cli::HumanBytes(3ull << 30), "3.0 GiB");

  v1::ProfileResponse r = SampleProfile();
  r.set_kind(v1::PROFILE_KIND_MEMORY);
  r.set_fault_period(100);
  const std::string page = cli::ToFlameGraph(r, "mem", false);
  // main is on all 9 samples: 9 * 100 faults * 4 KiB = 3.52 MiB.
  EXPECT_NE(page.find("main (/bin/app): 9 samples, 100.00%, 3.5 MiB touched"), std::string::npos)
      << page.substr(0, 3000);
}

TEST(ProfileExportTest, FlameGraphIsSelfContainedAndEscaped) {
  v1::ProfileResponse r = SampleProfile();
  r.mutable_frames(0)->set_name("std::vector<int> f<a&b>()");
  for (bool svg : {false, true}) {
    const std::string page = cli::ToFlameGraph(r, "t<itle>", svg);
    EXPECT_NE(page.find("std::vector&lt;int&gt; f&lt;a&amp;b&gt;()"), std::string::npos);
    EXPECT_EQ(page.find("<itle>"), std::string::npos);
    EXPECT_NE(page.find("addEventListener('click'"), std::string::npos);
    EXPECT_EQ(page.find("http"), page.find("http://www.w3.org/2000/svg"));  // no fetches
    EXPECT_EQ(svg, page.rfind("<?xml", 0) == 0);
  }
}

TEST(ProfileValidateTest, RejectsBadRequests) {
  v1::HotRequest h;
  h.set_comm_regex("(");
  EXPECT_EQ(ValidateHotRequest(h).status().code(), absl::StatusCode::kInvalidArgument);
  h.Clear();
  h.set_top(10001);
  EXPECT_EQ(ValidateHotRequest(h).status().code(), absl::StatusCode::kInvalidArgument);
  h.Clear();
  h.mutable_range()->set_since_ago_ns(1000);
  h.mutable_range()->set_until_ago_ns(2000);
  EXPECT_EQ(ValidateHotRequest(h).status().code(), absl::StatusCode::kInvalidArgument);
  h.Clear();
  h.set_frames(static_cast<v1::FrameFilter>(42));
  EXPECT_EQ(ValidateHotRequest(h).status().code(), absl::StatusCode::kInvalidArgument);
  v1::ProfileRequest p;
  p.mutable_range()->set_since_ago_ns(-1);
  EXPECT_EQ(ValidateProfileRequest(p).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ValidateHotRequest(v1::HotRequest()).ok());
  // Kinds: the default is CPU, MEMORY selects page faults, anything else
  // (an int32 on the wire) is refused.
  EXPECT_EQ(ValidateHotRequest(v1::HotRequest())->kind, PROFILE_KIND_CPU);
  h.Clear();
  h.set_kind(v1::PROFILE_KIND_MEMORY);
  EXPECT_EQ(ValidateHotRequest(h)->kind, PROFILE_KIND_FAULT);
  h.set_kind(static_cast<v1::ProfileKind>(2));
  absl::Status bad = ValidateHotRequest(h).status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.message(), "kind: unknown profile kind 2");
  p.Clear();
  p.set_kind(static_cast<v1::ProfileKind>(-1));
  EXPECT_EQ(ValidateProfileRequest(p).status().code(), absl::StatusCode::kInvalidArgument);
  p.set_kind(v1::PROFILE_KIND_MEMORY);
  EXPECT_EQ(ValidateProfileRequest(p)->kind, PROFILE_KIND_FAULT);
}

// --- SymbolCache with fakes -------------------------------------------------

struct FakeWorld {
  std::map<uint32_t, ProcessIdentity> alive;
  std::map<uint32_t, int> opens;          // OpenProcess calls per pid
  std::map<uint32_t, std::string> names;  // what each pid's code is called
};

class FakeProcess : public ProcessSymbols {
 public:
  explicit FakeProcess(std::string name) : name_(std::move(name)) {}
  Frame Resolve(uint64_t addr) override { return Frame::Of(name_, "/bin/fake", addr); }
  void Reload() override {}

 private:
  std::string name_;
};

class FakeSymbolizer : public Symbolizer {
 public:
  explicit FakeSymbolizer(FakeWorld* w) : w_(w) {}
  std::unique_ptr<ProcessSymbols> OpenProcess(uint32_t pid) override {
    ++w_->opens[pid];
    return std::make_unique<FakeProcess>(w_->names[pid]);
  }
  Frame ResolveKernel(uint64_t addr) override { return Frame::Of("kfn", "[kernel]", 0, true); }

 private:
  FakeWorld* w_;
};

class FakeInfo : public ProcessInfo {
 public:
  explicit FakeInfo(FakeWorld* w) : w_(w) {}
  bool Identify(uint32_t pid, ProcessIdentity* out) override {
    auto it = w_->alive.find(pid);
    if (it == w_->alive.end()) return false;
    *out = it->second;
    return true;
  }

 private:
  FakeWorld* w_;
};

TEST(SymbolCacheTest, ExitedProcessKeepsNamesUntilItStopsAppearing) {
  FakeWorld w;
  w.alive[5] = {100, 1};
  w.names[5] = "first";
  SymbolCache c(std::make_unique<FakeSymbolizer>(&w), std::make_unique<FakeInfo>(&w), {});
  c.BeginInterval();
  EXPECT_EQ(c.User(5, 1)->name(), "first");
  c.EndInterval();
  w.alive.erase(5);  // exits; its last samples arrive in the next interval
  c.BeginInterval();
  EXPECT_EQ(c.User(5, 2)->name(), "first");
  c.EndInterval();
  EXPECT_EQ(c.stats().processes, 1u);
  c.BeginInterval();
  c.EndInterval();  // no samples, gone: dropped
  EXPECT_EQ(c.stats().processes, 0u);
  EXPECT_EQ(c.stats().evicted_exit, 1u);
  EXPECT_EQ(w.opens[5], 1);
}

// An exiting process (a zombie, or one being killed) still has a stat file
// but no /proc/PID/exe and no maps: that is not an exec, and its last
// samples keep their names (found by the unwinder test: xz's last stack
// came out all "[unknown]").
TEST(SymbolCacheTest, AnExitingProcessIsNotAnExec) {
  FakeWorld w;
  w.alive[5] = {100, 7};
  w.names[5] = "running";
  SymbolCache c(std::make_unique<FakeSymbolizer>(&w), std::make_unique<FakeInfo>(&w), {});
  c.BeginInterval();
  EXPECT_EQ(c.User(5, 1)->name(), "running");
  c.EndInterval();
  w.alive[5] = {100, 0};  // exiting: exe unreadable
  w.names[5] = "[unknown]";
  c.BeginInterval();
  EXPECT_EQ(c.User(5, 2)->name(), "running");
  c.EndInterval();
  EXPECT_EQ(c.stats().evicted_exec, 0u);
  EXPECT_EQ(w.opens[5], 1);
}

TEST(SymbolCacheTest, PidReuseAndExecGetFreshTables) {
  FakeWorld w;
  w.alive[5] = {100, 1};
  w.names[5] = "old";
  SymbolCache c(std::make_unique<FakeSymbolizer>(&w), std::make_unique<FakeInfo>(&w), {});
  c.BeginInterval();
  EXPECT_EQ(c.User(5, 1)->name(), "old");
  c.EndInterval();
  w.alive[5] = {200, 1};  // a new process with the same pid
  w.names[5] = "new";
  c.BeginInterval();
  EXPECT_EQ(c.User(5, 1)->name(), "new");  // not the memoized "old"
  c.EndInterval();
  EXPECT_EQ(c.stats().evicted_exit, 1u);
  w.alive[5] = {200, 2};  // exec: same start time, new executable
  w.names[5] = "execd";
  c.BeginInterval();
  EXPECT_EQ(c.User(5, 1)->name(), "execd");
  c.EndInterval();
  EXPECT_EQ(c.stats().evicted_exec, 1u);
  EXPECT_EQ(w.opens[5], 3);
}

TEST(SymbolCacheTest, FunctionIdsAreSharedAndBounded) {
  FakeWorld w;
  w.alive[1] = {1, 1};
  w.alive[2] = {2, 1};
  w.names[1] = "same";
  w.names[2] = "same";
  SymbolCacheConfig cfg;
  cfg.max_functions = 1;
  SymbolCache c(std::make_unique<FakeSymbolizer>(&w), std::make_unique<FakeInfo>(&w), cfg);
  c.BeginInterval();
  FramePtr a = c.User(1, 10), b = c.User(2, 20);
  EXPECT_NE(a.get(), b.get());
  EXPECT_NE(a->fn_id(), 0u);
  EXPECT_EQ(a->fn_id(), b->fn_id());    // one function, two processes
  EXPECT_EQ(c.Kernel(5)->fn_id(), 0u);  // "kfn": table full
  c.EndInterval();
  EXPECT_EQ(c.stats().functions, 1u);
  EXPECT_EQ(c.stats().functions_overflow, 1u);
}

TEST(SymbolCacheTest, UnnamedFramesDoNotGrowTheFunctionTable) {
  FakeWorld w;
  w.alive[1] = {1, 1};
  w.names[1] = "";  // every address resolves without a name
  SymbolCache c(std::make_unique<FakeSymbolizer>(&w), std::make_unique<FakeInfo>(&w), {});
  c.BeginInterval();
  for (uint64_t a = 0; a < 1000; ++a) EXPECT_EQ(c.User(1, a)->fn_id(), 0u);
  c.EndInterval();
  EXPECT_EQ(c.stats().functions, 0u);
  EXPECT_EQ(c.stats().functions_overflow, 0u);
  EXPECT_EQ(c.stats().unnamed_frames, 1000u);
}

TEST(SymbolCacheTest, BoundedByProcessesAndAddresses) {
  FakeWorld w;
  for (uint32_t p = 1; p <= 5; ++p) w.alive[p] = {p, 1};
  SymbolCacheConfig cfg;
  cfg.max_processes = 3;
  cfg.max_addrs_per_process = 4;
  SymbolCache c(std::make_unique<FakeSymbolizer>(&w), std::make_unique<FakeInfo>(&w), cfg);
  c.BeginInterval();
  for (uint32_t p = 1; p <= 5; ++p) c.User(p, 1);
  for (uint64_t a = 0; a < 10; ++a) c.User(5, a);
  c.EndInterval();
  EXPECT_EQ(c.stats().processes, 3u);
  EXPECT_EQ(c.stats().evicted_capacity, 2u);
  EXPECT_GE(c.stats().memo_resets, 1u);
  EXPECT_LE(c.stats().memo_addrs, 3u * 4u);
}

TEST(SymbolCacheTest, MemoizedAddressesAreBoundedOverAllProcesses) {
  FakeWorld w;
  for (uint32_t p = 1; p <= 4; ++p) w.alive[p] = {p, 1};
  SymbolCacheConfig cfg;
  cfg.max_addrs_per_process = 100;
  cfg.max_memo_addrs = 10;
  SymbolCache c(std::make_unique<FakeSymbolizer>(&w), std::make_unique<FakeInfo>(&w), cfg);
  c.BeginInterval();
  uint64_t most = 0;
  for (uint32_t p = 1; p <= 4; ++p) {
    for (uint64_t a = 0; a < 8; ++a) {
      c.User(p, a);
      most = std::max(most, c.stats().memo_addrs);
    }
  }
  c.EndInterval();
  EXPECT_EQ(most, 10u);                  // reached, never passed
  EXPECT_EQ(c.stats().memo_resets, 3u);  // at the 11th, 21st and 31st address
  EXPECT_EQ(c.stats().memo_addrs, 2u);
  // A process that exits takes its memo's count with it.
  w.alive.erase(4);
  c.BeginInterval();
  c.EndInterval();
  EXPECT_EQ(c.stats().memo_addrs, 0u);
}

// A frame per address, but one copy of the strings per function (and per
// module for unnamed frames): the memo's bytes do not grow with name length.
TEST(SymbolCacheTest, FramesOfOneFunctionShareOneSymbol) {
  FakeWorld w;
  w.alive[1] = {1, 1};
  w.alive[2] = {2, 1};
  w.names[1] = "ns::AFunctionWithAVeryLongDemangledName<std::basic_string<char>>(int)";
  w.names[2] = w.names[1];
  SymbolCache c(std::make_unique<FakeSymbolizer>(&w), std::make_unique<FakeInfo>(&w), {});
  c.BeginInterval();
  FramePtr a = c.User(1, 10), b = c.User(1, 20), other = c.User(2, 30);
  EXPECT_NE(a.get(), b.get());
  EXPECT_EQ(a->offset, 10u);
  EXPECT_EQ(b->offset, 20u);
  EXPECT_EQ(a->symbol.get(), b->symbol.get());
  EXPECT_EQ(a->symbol.get(), other->symbol.get());
  w.alive[3] = {3, 1};
  w.names[3] = "";
  FramePtr u1 = c.User(3, 40), u2 = c.User(3, 50);
  EXPECT_FALSE(u1->named());
  EXPECT_EQ(u1->symbol.get(), u2->symbol.get());
  EXPECT_EQ(u1->DisplayName(), "/bin/fake+0x28");
  c.EndInterval();
}

// Large map calls: summed by (call, user stack) for one process across
// intervals, most bytes first, with mapped and unmapped totals; CPU and
// page-fault records and other processes stay out.
TEST_F(ProfileMergeTest, MapCallMergerSumsOneProcessByCallAndStack) {
  auto map = [](uint32_t tgid, uint8_t kind, uint64_t calls, uint64_t bytes) {
    ProfileStackRecord r = Rec(tgid, tgid, calls);
    r.kind = kind;
    r.bytes = bytes;
    return r;
  };
  ProfileInterval a, b;
  a.Append(map(7, PROFILE_KIND_MMAP, 2, 8 << 20), {}, {lib_, work_, main_});
  a.Append(map(7, PROFILE_KIND_MUNMAP, 1, 4 << 20), {}, {lib_, work_, main_});
  a.Append(map(8, PROFILE_KIND_MMAP, 9, 900 << 20), {}, {lib_, main_});  // another process
  a.Append(Rec(7, 7, 50), {}, {work_, main_});                           // CPU
  b.Append(map(7, PROFILE_KIND_MMAP, 1, 4 << 20),  // the same stack, other frame objects
           {}, {F("ns::Lib()", "/lib/libx.so"), F("ns::Work(int)", "/bin/app"), main_});
  b.Append(map(7, PROFILE_KIND_BRK, 1, 3 << 20), {}, {work_, main_});
  b.Append(map(7, PROFILE_KIND_BRK_SHRINK, 1, 1 << 20), {}, {work_, main_});
  MapCallMerger m(7, /*max_frames=*/2);
  m.Add(a);
  m.Add(b);
  v1::LargeMapCalls r;
  m.Finish(/*top=*/3, &r);
  EXPECT_EQ(r.mapped_bytes(), (12u << 20) + (3u << 20));
  EXPECT_EQ(r.mapping_calls(), 4u);
  EXPECT_EQ(r.unmapped_bytes(), (4u << 20) + (1u << 20));
  EXPECT_EQ(r.unmapping_calls(), 2u);
  ASSERT_EQ(r.stacks_size(), 3);
  EXPECT_EQ(r.stacks_omitted(), 1u);
  EXPECT_EQ(r.stacks(0).call(), v1::MAP_CALL_MMAP);
  EXPECT_EQ(r.stacks(0).calls(), 3u);
  EXPECT_EQ(r.stacks(0).bytes(), 12u << 20);
  ASSERT_EQ(r.stacks(0).frames_size(), 2);  // cut to max_frames
  EXPECT_TRUE(r.stacks(0).frames_cut());
  EXPECT_EQ(r.stacks(0).frames(0).name(), "ns::Lib()");
  EXPECT_EQ(r.stacks(1).call(), v1::MAP_CALL_MUNMAP);
  EXPECT_EQ(r.stacks(2).call(), v1::MAP_CALL_BRK_GROW);
  EXPECT_FALSE(r.stacks(2).frames_cut());
}

}  // namespace
}  // namespace vigil
