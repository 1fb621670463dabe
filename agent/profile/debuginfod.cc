#include "agent/profile/debuginfod.h"

#include <dlfcn.h>
#include <elfutils/debuginfod.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "agent/profile/elf_info.h"

namespace vigil {
namespace {

// ready_ entries beyond this are forgotten (their files stay in the cache,
// where libdebuginfod finds them again without the network).
constexpr size_t kMaxReady = 65536;
// Files the cache walk looks at; a directory we own never holds more unless
// something else writes there.
constexpr size_t kMaxCacheFiles = 200000;

// libdebuginfod, dlopen()ed when debuginfod is turned on (as elfutils'
// libdwfl does): linked, it pulls libcurl-gnutls, krb5, ldap and ssh2 into
// every vigild and initializes curl at load, even with debuginfod off
// (+3.5 MB idle RSS, measured). Never unloaded (RTLD_NODELETE): curl keeps
// global state and threads' cleanup may still run in it.
struct DebuginfodApi {
  decltype(&debuginfod_begin) begin = nullptr;
  decltype(&debuginfod_end) end = nullptr;
  decltype(&debuginfod_find_debuginfo) find_debuginfo = nullptr;
  decltype(&debuginfod_set_progressfn) set_progressfn = nullptr;
};

absl::StatusOr<DebuginfodApi> LoadDebuginfodApi() {
  void* h = dlopen(DEBUGINFOD_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (h == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        DEBUGINFOD_SONAME, " not loadable (Debian package libdebuginfod1): ", dlerror()));
  }
  DebuginfodApi api;
  api.begin = reinterpret_cast<decltype(api.begin)>(dlsym(h, "debuginfod_begin"));
  api.end = reinterpret_cast<decltype(api.end)>(dlsym(h, "debuginfod_end"));
  api.find_debuginfo =
      reinterpret_cast<decltype(api.find_debuginfo)>(dlsym(h, "debuginfod_find_debuginfo"));
  api.set_progressfn =
      reinterpret_cast<decltype(api.set_progressfn)>(dlsym(h, "debuginfod_set_progressfn"));
  if (api.begin == nullptr || api.end == nullptr || api.find_debuginfo == nullptr ||
      api.set_progressfn == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(DEBUGINFOD_SONAME, " lacks the debuginfod_* functions it should have"));
  }
  return api;
}

// The fetch running on this thread (the worker), for Progress(): set for
// the duration of one debuginfod_find_debuginfo call.
thread_local const FetchControl* current_fetch = nullptr;

// libdebuginfod calls this while a transfer runs (about once a second, and
// as data arrives); non-zero aborts the transfer.
int Progress(debuginfod_client* /*c*/, long done, long /*total*/) {
  const FetchControl* ctl = current_fetch;
  if (ctl == nullptr) return 0;
  if (ctl->stop != nullptr && ctl->stop->load(std::memory_order_relaxed)) return 1;
  if (done > 0 && static_cast<uint64_t>(done) > ctl->max_bytes) return 1;
  return absl::Now() > ctl->deadline ? 1 : 0;
}

}  // namespace

std::string EffectiveDebuginfodUrls(const DebuginfodConfig& config, const char* env_urls) {
  const absl::string_view urls = absl::StripAsciiWhitespace(config.urls);
  if (urls == "off") return "";
  if (!urls.empty()) return std::string(urls);
  return env_urls == nullptr ? "" : std::string(absl::StripAsciiWhitespace(env_urls));
}

void NegativeCache::Add(const std::string& build_id, absl::Time retry_at) {
  auto it = entries_.find(build_id);
  if (it != entries_.end()) {
    it->second.first = retry_at;
    return;
  }
  if (max_entries_ == 0) return;
  while (entries_.size() >= max_entries_) {
    entries_.erase(order_.front());
    order_.pop_front();
    ++forgotten_;
  }
  order_.push_back(build_id);
  entries_.emplace(build_id, std::make_pair(retry_at, std::prev(order_.end())));
}

bool NegativeCache::Blocked(const std::string& build_id, absl::Time now,
                            absl::Time* retry_at) const {
  auto it = entries_.find(build_id);
  if (it == entries_.end() || now >= it->second.first) return false;
  if (retry_at != nullptr) *retry_at = it->second.first;
  return true;
}

void NegativeCache::Erase(const std::string& build_id) {
  auto it = entries_.find(build_id);
  if (it == entries_.end()) return;
  order_.erase(it->second.second);
  entries_.erase(it);
}

DebugFileCache::TrimResult DebugFileCache::Trim() const {
  namespace fs = std::filesystem;
  struct File {
    int64_t mtime_ns;
    uint64_t size;
    std::string path;
  };
  std::vector<File> files;
  TrimResult r;
  auto stat_file = [&](const std::string& p) {
    struct stat st;
    // lstat: a symlink planted here is neither followed nor counted.
    if (lstat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;
    files.push_back(File{int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec,
                         static_cast<uint64_t>(st.st_size), p});
  };
  std::error_code ec;
  for (fs::directory_iterator top(dir_, ec), end;
       !ec && top != end && files.size() < kMaxCacheFiles; top.increment(ec)) {
    // Top-level files are libdebuginfod's own settings (cache_clean_interval_s).
    if (!top->is_directory(ec) || top->is_symlink(ec)) continue;
    std::error_code ec2;
    for (fs::directory_iterator sub(top->path(), ec2), end2;
         !ec2 && sub != end2 && files.size() < kMaxCacheFiles; sub.increment(ec2)) {
      stat_file(sub->path().string());
    }
  }
  for (const File& f : files) r.bytes += f.size;
  std::sort(files.begin(), files.end(), [](const File& a, const File& b) {
    return std::tie(a.mtime_ns, a.path) < std::tie(b.mtime_ns, b.path);
  });
  for (const File& f : files) {
    if (r.bytes <= max_bytes_) break;
    if (unlink(f.path.c_str()) != 0) continue;
    r.bytes -= f.size;
    r.evicted.push_back(f.path);
    rmdir(fs::path(f.path).parent_path().c_str());  // fails while not empty
  }
  return r;
}

absl::Status PrepareCacheDir(const std::string& dir) {
  if (dir.empty() || dir[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat("debuginfod cache \"", dir, "\": not absolute"));
  }
  // The parents as the umask makes them; the cache itself private from the
  // start (the umask can only take bits away from 0700).
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(dir).parent_path(), ec);
  if (ec || (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "debuginfod cache ", dir, ": ", ec ? ec.message() : std::string(strerror(errno))));
  }
  // O_NOFOLLOW, then fstat/fchmod on what was opened: a symlink planted at
  // the path is refused, never followed (a chmod through it could reach
  // any file).
  UniqueFd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  struct stat st;
  if (fd.get() < 0 || fstat(fd.get(), &st) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("debuginfod cache ", dir, ": not a directory (or a symlink)"));
  }
  // Files fetched here are parsed by a root process and trusted for names:
  // nobody else may have planted them.
  if (st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("debuginfod cache ", dir,
                                                      ": must be owned by uid ", geteuid(),
                                                      " and not writable by others"));
  }
  if ((st.st_mode & 077) != 0) fchmod(fd.get(), 0700);  // readable by others: no longer
  return absl::OkStatus();
}

absl::StatusOr<FetchFn> NewLibdebuginfodFetch(const DebuginfodConfig& config,
                                              const std::string& urls) {
  absl::StatusOr<DebuginfodApi> api = LoadDebuginfodApi();
  if (!api.ok()) return api.status();
  const std::string secs =
      std::to_string(std::max<int64_t>(1, absl::ToInt64Seconds(config.timeout)));
  setenv(DEBUGINFOD_URLS_ENV_VAR, urls.c_str(), 1);
  setenv(DEBUGINFOD_CACHE_PATH_ENV_VAR, config.cache_dir.c_str(), 1);
  // _TIMEOUT bounds connecting and the first 100 KiB, _MAXTIME the whole
  // transfer, _MAXSIZE what the server may send (it refuses larger files
  // before sending). Progress() enforces the last two again, on our clock.
  setenv(DEBUGINFOD_TIMEOUT_ENV_VAR, secs.c_str(), 1);
  setenv(DEBUGINFOD_MAXTIME_ENV_VAR, secs.c_str(), 1);
  setenv(DEBUGINFOD_MAXSIZE_ENV_VAR, std::to_string(config.max_download_bytes).c_str(), 1);
  // Progress lines on the agent's stderr would flood the journal.
  unsetenv(DEBUGINFOD_PROGRESS_ENV_VAR);
  unsetenv(DEBUGINFOD_VERBOSE_ENV_VAR);
  const DebuginfodApi fns = *api;
  std::shared_ptr<debuginfod_client> client(fns.begin(), [fns](debuginfod_client* c) {
    if (c != nullptr) fns.end(c);
  });
  if (client == nullptr) return absl::UnavailableError("debuginfod_begin failed");
  fns.set_progressfn(client.get(), &Progress);
  // The worker thread is the only caller: one client, reused.
  return FetchFn([client, fns](const std::string& build_id,
                               const FetchControl& ctl) -> absl::StatusOr<std::string> {
    current_fetch = &ctl;
    char* raw_path = nullptr;
    const int fd = fns.find_debuginfo(
        client.get(), reinterpret_cast<const unsigned char*>(build_id.c_str()), 0, &raw_path);
    current_fetch = nullptr;
    std::unique_ptr<char, void (*)(void*)> path(raw_path, free);
    if (fd < 0) {
      return absl::UnavailableError(absl::StrCat("debuginfod ", build_id, ": ", strerror(-fd)));
    }
    UniqueFd file(fd);
    if (path == nullptr) return absl::InternalError("debuginfod returned no path");
    struct stat st;
    absl::StatusOr<ElfInfo> info = ReadElfInfo(file.get());
    // A server is trusted for names, not for which file it sends: a debug
    // file of another build would name frames wrongly.
    if (fstat(file.get(), &st) != 0 || static_cast<uint64_t>(st.st_size) > ctl.max_bytes ||
        !info.ok() || BuildIdHex(info->build_id) != build_id) {
      unlink(path.get());
      return absl::DataLossError(absl::StrCat("debuginfod ", build_id,
                                              ": the file served is not that build's debug file"));
    }
    return std::string(path.get());
  });
}

DebuginfodFetcher::DebuginfodFetcher(const DebuginfodConfig& config, FetchFn fetch)
    : config_(config),
      fetch_(std::move(fetch)),
      cache_(config.cache_dir, config.cache_max_bytes),
      negative_(config.negative_entries) {
  {
    absl::MutexLock lock(&mu_);
    stats_.enabled = true;
  }
  thread_ = std::thread([this] { Loop(); });
}

DebuginfodFetcher::~DebuginfodFetcher() {
  {
    absl::MutexLock lock(&mu_);
    stop_.store(true);
  }
  if (thread_.joinable()) thread_.join();
}

DebuginfodFetcher::Answer DebuginfodFetcher::Peek(const std::string& build_id) const {
  absl::MutexLock lock(&mu_);
  Answer a;
  if (auto it = ready_.find(build_id); it != ready_.end()) {
    a.state = State::kReady;
    a.path = it->second;
  } else if (queued_.contains(build_id)) {
    a.state = State::kPending;
  } else if (negative_.Blocked(build_id, absl::Now(), &a.retry_at)) {
    a.state = State::kFailed;
  }
  return a;
}

DebuginfodFetcher::Answer DebuginfodFetcher::Request(const std::string& build_id) {
  absl::MutexLock lock(&mu_);
  Answer a;
  if (auto it = ready_.find(build_id); it != ready_.end()) {
    a.state = State::kReady;
    a.path = it->second;
    return a;
  }
  if (queued_.contains(build_id)) {
    a.state = State::kPending;
    return a;
  }
  if (negative_.Blocked(build_id, absl::Now(), &a.retry_at)) {
    ++stats_.negative_hits;
    a.state = State::kFailed;
    return a;
  }
  if (queue_.size() >= config_.queue_size) {
    ++stats_.queue_drops;
    return a;  // kUnknown: the caller asks again later
  }
  negative_.Erase(build_id);
  queue_.push_back(build_id);
  queued_.insert(build_id);
  a.state = State::kPending;
  return a;
}

DebuginfodStats DebuginfodFetcher::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

void DebuginfodFetcher::WaitIdle() const {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(this, &DebuginfodFetcher::Idle));
}

bool DebuginfodFetcher::Idle() const { return queued_.empty(); }
bool DebuginfodFetcher::HasWorkOrStop() const { return stop_.load() || !queue_.empty(); }

void DebuginfodFetcher::Loop() {
  {
    // What a previous run left, against this run's bound.
    DebugFileCache::TrimResult t = cache_.Trim();
    absl::MutexLock lock(&mu_);
    stats_.cache_bytes = t.bytes;
    stats_.cache_evictions += t.evicted.size();
  }
  for (;;) {
    std::string id;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &DebuginfodFetcher::HasWorkOrStop));
      if (stop_.load()) return;
      id = queue_.front();
      queue_.pop_front();
    }
    FetchControl ctl{absl::Now() + config_.timeout, config_.max_download_bytes, &stop_};
    absl::StatusOr<std::string> path = fetch_(id, ctl);
    DebugFileCache::TrimResult t;
    if (path.ok()) t = cache_.Trim();
    {
      absl::MutexLock lock(&mu_);
      queued_.erase(id);
      stats_.cache_evictions += t.evicted.size();
      if (path.ok()) stats_.cache_bytes = t.bytes;
      for (const std::string& gone : t.evicted) {
        for (auto it = ready_.begin(); it != ready_.end();) {
          if (it->second == gone) {
            ready_.erase(it++);
          } else {
            ++it;
          }
        }
      }
      const bool kept =
          path.ok() && std::find(t.evicted.begin(), t.evicted.end(), *path) == t.evicted.end();
      if (kept) {
        if (ready_.size() >= kMaxReady) ready_.clear();
        ready_[id] = *path;
        ++stats_.fetched;
      } else if (!stop_.load()) {
        negative_.Add(id, absl::Now() + config_.retry_after);
        ++stats_.failed;
      }
      // Under the lock: whoever sees the fetch finished (WaitIdle, Peek)
      // also sees the new generation.
      generation_.fetch_add(1, std::memory_order_release);
    }
  }
}

}  // namespace vigil
