// debuginfod's bounded pieces without a server (a fake fetch), the ELF
// header reader and MiniDebugInfo against hostile input.
#include "agent/profile/debuginfod.h"

#include <elf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <lzma.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "agent/profile/elf_info.h"
#include "tests/test_util.h"

namespace vigil {
namespace {

namespace fs = std::filesystem;

void WriteFile(const std::string& path, size_t bytes, int64_t mtime_sec) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << std::string(bytes, 'x');
  struct timespec ts[2] = {{mtime_sec, 0}, {mtime_sec, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), ts, 0), 0);
}

TEST(NegativeCacheTest, BlocksUntilRetryTimeAndStaysBounded) {
  NegativeCache c(2);
  const absl::Time now = absl::Now();
  c.Add("aa", now + absl::Seconds(10));
  absl::Time retry;
  EXPECT_TRUE(c.Blocked("aa", now, &retry));
  EXPECT_EQ(retry, now + absl::Seconds(10));
  EXPECT_FALSE(c.Blocked("aa", now + absl::Seconds(10), nullptr));  // retry time has come
  EXPECT_FALSE(c.Blocked("bb", now, nullptr));
  c.Add("bb", now + absl::Seconds(10));
  c.Add("cc", now + absl::Seconds(10));  // over the bound: "aa", the oldest, goes
  EXPECT_EQ(c.size(), 2u);
  EXPECT_EQ(c.forgotten(), 1u);
  EXPECT_FALSE(c.Blocked("aa", now, nullptr));
  EXPECT_TRUE(c.Blocked("bb", now, nullptr));
  EXPECT_TRUE(c.Blocked("cc", now, nullptr));
  c.Erase("bb");
  EXPECT_FALSE(c.Blocked("bb", now, nullptr));
  EXPECT_EQ(c.size(), 1u);
}

TEST(DebugFileCacheTest, TrimDeletesOldestFilesUntilWithinBytes) {
  test::TempDir dir;
  WriteFile(dir.path() + "/aa/debuginfo", 1000, 1000);  // oldest
  WriteFile(dir.path() + "/bb/debuginfo", 1000, 2000);
  WriteFile(dir.path() + "/cc/debuginfo", 1000, 3000);         // newest
  WriteFile(dir.path() + "/cache_clean_interval_s", 5000, 1);  // libdebuginfod's: not ours
  // A symlink to a big file elsewhere is neither counted nor followed.
  WriteFile(dir.path() + "-outside", 100000, 1);
  fs::create_directories(dir.path() + "/dd");
  fs::create_symlink(dir.path() + "-outside", dir.path() + "/dd/debuginfo");

  DebugFileCache cache(dir.path(), 2500);
  DebugFileCache::TrimResult r = cache.Trim();
  EXPECT_EQ(r.bytes, 2000u);
  ASSERT_EQ(r.evicted.size(), 1u);
  EXPECT_EQ(r.evicted[0], dir.path() + "/aa/debuginfo");
  EXPECT_FALSE(fs::exists(dir.path() + "/aa"));  // the emptied build-id dir too
  EXPECT_TRUE(fs::exists(dir.path() + "/bb/debuginfo"));
  EXPECT_TRUE(fs::exists(dir.path() + "/cache_clean_interval_s"));
  EXPECT_TRUE(fs::exists(dir.path() + "-outside"));
  fs::remove(dir.path() + "-outside");

  // Within the bound: nothing goes.
  r = cache.Trim();
  EXPECT_EQ(r.bytes, 2000u);
  EXPECT_TRUE(r.evicted.empty());
}

TEST(DebugFileCacheTest, PrepareCacheDirRefusesWhatOthersCouldWrite) {
  test::TempDir dir;
  const std::string d = dir.path() + "/cache/debuginfod";
  ASSERT_TRUE(PrepareCacheDir(d).ok());
  struct stat st;
  ASSERT_EQ(stat(d.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  chmod(d.c_str(), 0755);
  EXPECT_TRUE(PrepareCacheDir(d).ok());  // readable by others: made private
  ASSERT_EQ(stat(d.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  chmod(d.c_str(), 0777);  // others could have planted files: refused
  EXPECT_FALSE(PrepareCacheDir(d).ok());
  chmod(d.c_str(), 0700);
  fs::create_symlink(d, dir.path() + "/link");
  EXPECT_FALSE(PrepareCacheDir(dir.path() + "/link").ok());
  EXPECT_FALSE(PrepareCacheDir("relative/dir").ok());
}

TEST(DebuginfodUrlsTest, ConfigOverridesEnvironmentAndOffWins) {
  DebuginfodConfig c;
  EXPECT_EQ(EffectiveDebuginfodUrls(c, nullptr), "");
  EXPECT_EQ(EffectiveDebuginfodUrls(c, "http://env:8002"), "http://env:8002");
  c.urls = "http://cfg:8002";
  EXPECT_EQ(EffectiveDebuginfodUrls(c, "http://env:8002"), "http://cfg:8002");
  c.urls = "off";
  EXPECT_EQ(EffectiveDebuginfodUrls(c, "http://env:8002"), "");
}

// A fake server: build-ids starting with "bad" fail, others are written as
// files of `size` bytes into the cache.
class FetcherTest : public ::testing::Test {
 protected:
  DebuginfodConfig Config() {
    DebuginfodConfig c;
    c.cache_dir = dir_.path();
    c.cache_max_bytes = 2500;
    c.max_download_bytes = 2000;
    c.retry_after = absl::Milliseconds(300);
    c.queue_size = 4;
    c.negative_entries = 16;
    return c;
  }
  FetchFn Fake(size_t size) {
    return [this, size](const std::string& id,
                        const FetchControl& ctl) -> absl::StatusOr<std::string> {
      ++calls_;
      if (id.rfind("bad", 0) == 0) return absl::NotFoundError("404");
      EXPECT_EQ(ctl.max_bytes, 2000u);
      EXPECT_GT(ctl.deadline, absl::Now());
      const std::string path = dir_.path() + "/" + id + "/debuginfo";
      WriteFile(path, size, 1000 + calls_);  // later fetches are newer
      return path;
    };
  }
  test::TempDir dir_;
  std::atomic<int> calls_{0};
};

TEST_F(FetcherTest, FetchesOffThreadAndServesFromMemoryAfterwards) {
  DebuginfodFetcher f(Config(), Fake(1000));
  EXPECT_EQ(f.Peek("aa").state, DebuginfodFetcher::State::kUnknown);
  EXPECT_NE(f.Request("aa").state, DebuginfodFetcher::State::kFailed);
  f.WaitIdle();
  DebuginfodFetcher::Answer a = f.Request("aa");
  ASSERT_EQ(a.state, DebuginfodFetcher::State::kReady);
  EXPECT_EQ(a.path, dir_.path() + "/aa/debuginfo");
  EXPECT_EQ(calls_.load(), 1);  // the second request did not fetch
  DebuginfodStats s = f.stats();
  EXPECT_TRUE(s.enabled);
  EXPECT_EQ(s.fetched, 1u);
  EXPECT_EQ(s.cache_bytes, 1000u);
  EXPECT_GE(f.generation(), 1u);
}

TEST_F(FetcherTest, FailuresAreNegativeCachedUntilTheirRetryTime) {
  DebuginfodFetcher f(Config(), Fake(1000));
  f.Request("bad1");
  f.WaitIdle();
  EXPECT_EQ(calls_.load(), 1);
  DebuginfodFetcher::Answer a = f.Request("bad1");
  EXPECT_EQ(a.state, DebuginfodFetcher::State::kFailed);
  EXPECT_GT(a.retry_at, absl::Now());
  f.Request("bad1");
  EXPECT_EQ(calls_.load(), 1);  // refused without asking the server
  DebuginfodStats s = f.stats();
  EXPECT_EQ(s.failed, 1u);
  EXPECT_EQ(s.negative_hits, 2u);
  // Peek neither counts nor queues.
  EXPECT_EQ(f.Peek("bad1").state, DebuginfodFetcher::State::kFailed);
  EXPECT_EQ(f.stats().negative_hits, 2u);
  // Once the retry time has come it is asked again.
  absl::SleepFor(absl::Milliseconds(350));
  EXPECT_EQ(f.Peek("bad1").state, DebuginfodFetcher::State::kUnknown);
  EXPECT_EQ(f.Request("bad1").state, DebuginfodFetcher::State::kPending);
  f.WaitIdle();
  EXPECT_EQ(calls_.load(), 2);
  EXPECT_EQ(f.stats().failed, 2u);
}

TEST_F(FetcherTest, CacheStaysWithinBytesAndForgetsEvictedFiles) {
  DebuginfodFetcher f(Config(), Fake(1000));
  for (const char* id : {"aa", "bb", "cc"}) {
    f.Request(id);
    f.WaitIdle();
  }
  DebuginfodStats s = f.stats();
  EXPECT_EQ(s.fetched, 3u);
  EXPECT_EQ(s.cache_evictions, 1u);
  EXPECT_EQ(s.cache_bytes, 2000u);
  EXPECT_FALSE(fs::exists(dir_.path() + "/aa/debuginfo"));
  // The evicted file's build-id is no longer "ready": asked again.
  EXPECT_EQ(f.Peek("aa").state, DebuginfodFetcher::State::kUnknown);
  EXPECT_EQ(f.Peek("cc").state, DebuginfodFetcher::State::kReady);
}

TEST_F(FetcherTest, AFileLargerThanTheCacheIsAFailure) {
  DebuginfodFetcher f(Config(), Fake(3000));  // a fake server ignoring max_bytes
  f.Request("aa");
  f.WaitIdle();
  EXPECT_EQ(f.Peek("aa").state, DebuginfodFetcher::State::kFailed);
  DebuginfodStats s = f.stats();
  EXPECT_EQ(s.failed, 1u);
  EXPECT_EQ(s.cache_evictions, 1u);
  EXPECT_EQ(s.cache_bytes, 0u);
}

TEST_F(FetcherTest, AFullQueueDropsAndCounts) {
  absl::Notification release;
  std::atomic<bool> running{false};
  DebuginfodConfig c = Config();
  c.queue_size = 1;
  DebuginfodFetcher f(
      c, [&](const std::string& id, const FetchControl& ctl) -> absl::StatusOr<std::string> {
        running = true;
        // Blocks until released, or until the fetcher stops.
        while (!release.HasBeenNotified() && !ctl.stop->load())
          absl::SleepFor(absl::Milliseconds(5));
        return absl::NotFoundError("released");
      });
  f.Request("aa");  // taken by the worker
  while (!running) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(f.Request("bb").state, DebuginfodFetcher::State::kPending);  // queued
  EXPECT_EQ(f.Request("cc").state, DebuginfodFetcher::State::kUnknown);  // no room
  EXPECT_EQ(f.Request("aa").state, DebuginfodFetcher::State::kPending);  // not queued twice
  EXPECT_EQ(f.stats().queue_drops, 1u);
  release.Notify();
  f.WaitIdle();
  EXPECT_EQ(f.stats().failed, 2u);
}

TEST_F(FetcherTest, DestructorAbortsARunningFetch) {
  std::atomic<bool> running{false};
  const absl::Time began = absl::Now();
  {
    DebuginfodFetcher f(
        Config(), [&](const std::string&, const FetchControl& ctl) -> absl::StatusOr<std::string> {
          running = true;
          while (!ctl.stop->load()) absl::SleepFor(absl::Milliseconds(5));
          return absl::CancelledError("stopped");
        });
    f.Request("aa");
    while (!running) absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_LT(absl::Now() - began, absl::Seconds(5));
}

// --- ELF headers and MiniDebugInfo against hostile input ---------------------

std::string Xz(const std::string& in) {
  std::string out(lzma_stream_buffer_bound(in.size()), '\0');
  size_t pos = 0;
  EXPECT_EQ(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC64, nullptr,
                                    reinterpret_cast<const uint8_t*>(in.data()), in.size(),
                                    reinterpret_cast<uint8_t*>(out.data()), &pos, out.size()),
            LZMA_OK);
  out.resize(pos);
  return out;
}

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

size_t CountSyms(absl::StatusOr<size_t> r) { return r.ok() ? *r : 0; }

TEST(MiniDebugInfoTest, HostileStreamsFailWithoutCrashing) {
  auto ignore = [](const char*, uint64_t, uint64_t) {};
  EXPECT_FALSE(ParseMiniDebugInfo("", 1 << 20, ignore).ok());
  EXPECT_FALSE(ParseMiniDebugInfo("garbage, not xz at all", 1 << 20, ignore).ok());
  // A stream that inflates far past the bound (16 MiB of zeros is ~3 KiB
  // of xz): stopped at the bound, not allocated.
  const std::string bomb = Xz(std::string(16 << 20, '\0'));
  ASSERT_LT(bomb.size(), 1u << 20);
  absl::StatusOr<size_t> r = ParseMiniDebugInfo(bomb, 1 << 20, ignore);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  // Well-formed xz around something that is not ELF.
  EXPECT_FALSE(ParseMiniDebugInfo(Xz("hello, world"), 1 << 20, ignore).ok());
  // A real ELF file (this test binary), compressed, then cut anywhere: the
  // stream and, where it still inflates, the image are checked.
  const std::string self = ReadAll("/proc/self/exe").substr(0, 256 << 10);
  const std::string xz = Xz(self);
  for (size_t cut : {size_t{1}, size_t{12}, xz.size() / 3, xz.size() / 2, xz.size() - 1}) {
    EXPECT_FALSE(ParseMiniDebugInfo(xz.substr(0, cut), 1 << 20, ignore).ok()) << cut;
  }
  // A valid stream of a truncated ELF image (headers pointing past its end).
  EXPECT_EQ(CountSyms(ParseMiniDebugInfo(Xz(self.substr(0, 4096)), 1 << 20, ignore)), 0u);
  // Flipped bytes inside the compressed stream.
  std::string flipped = xz;
  for (size_t i = 32; i < flipped.size(); i += 97) flipped[i] ^= 0x5a;
  EXPECT_FALSE(ParseMiniDebugInfo(flipped, 1 << 20, ignore).ok());
}

TEST(MiniDebugInfoTest, ElfImageWithGarbageHeadersYieldsNothing) {
  auto ignore = [](const char*, uint64_t, uint64_t) {};
  // An ELF header claiming 65535 sections at an offset past the end.
  Elf64_Ehdr eh = {};
  memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_version = EV_CURRENT;
  eh.e_shoff = 1ull << 40;
  eh.e_shentsize = sizeof(Elf64_Shdr);
  eh.e_shnum = 65535;
  eh.e_phoff = ~0ull;
  eh.e_phnum = 65535;
  eh.e_phentsize = sizeof(Elf64_Phdr);
  const std::string image(reinterpret_cast<const char*>(&eh), sizeof(eh));
  EXPECT_EQ(CountSyms(ParseMiniDebugInfo(Xz(image), 1 << 20, ignore)), 0u);

  // The same header as a file on disk: ReadElfInfo bounds what it reads.
  test::TempDir dir;
  const std::string path = dir.path() + "/evil";
  std::ofstream(path, std::ios::binary) << image << std::string(4096, '\xff');
  int fd = open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  absl::StatusOr<ElfInfo> info = ReadElfInfo(fd);
  close(fd);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_TRUE(info->build_id.empty());
  EXPECT_FALSE(info->has_symtab);
}

TEST(ElfInfoTest, ReadsThisBinarysBuildIdAndRejectsNonElf) {
  int fd = open("/proc/self/exe", O_RDONLY);
  ASSERT_GE(fd, 0);
  absl::StatusOr<ElfInfo> info = ReadElfInfo(fd);
  close(fd);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->build_id.size(), 20u);  // GCC's default --build-id=sha1
  EXPECT_TRUE(info->has_symtab);          // RelWithDebInfo is not stripped
  EXPECT_EQ(BuildIdHex("\x01\xab"), "01ab");

  test::TempDir dir;
  for (const std::string& body : {std::string(),
                                  std::string("\x7f"
                                              "EL"),
                                  std::string(100, 'z'),
                                  std::string("\x7f"
                                              "ELF") +
                                      std::string(20, '\0')}) {
    const std::string path = dir.path() + "/f";
    std::ofstream(path, std::ios::binary | std::ios::trunc) << body;
    int f = open(path.c_str(), O_RDONLY);
    ASSERT_GE(f, 0);
    EXPECT_FALSE(ReadElfInfo(f).ok()) << body.size();
    close(f);
  }
  // Not a regular file: refused before any read could block.
  ASSERT_EQ(mkfifo((dir.path() + "/fifo").c_str(), 0600), 0);
  int f = open((dir.path() + "/fifo").c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(f, 0);
  EXPECT_FALSE(ReadElfInfo(f).ok());
  close(f);
}

}  // namespace
}  // namespace vigil
