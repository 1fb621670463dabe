#include "agent/metrics/pprof_http.h"

#include <cstdint>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/duration.h"
#include "common/pprof.h"
#include "common/regex.h"
#include "common/safe_text.h"

namespace vigil {
namespace {

constexpr int64_t kDefaultSeconds = 30;  // Go's default

struct Endpoint {
  const char* name;
  v1::ProfileKind kind;
  const char* what;
};
constexpr Endpoint kEndpoints[] = {
    {"profile", v1::PROFILE_KIND_CPU,
     "CPU profile: sampled on-CPU stacks of every process (sample types samples/count, "
     "cpu/nanoseconds)"},
    {"faults", v1::PROFILE_KIND_MEMORY,
     "Memory: sampled page faults, where memory is first touched (faults/count, "
     "fault_bytes/bytes)"},
};

int HttpStatus(absl::StatusCode c) {
  switch (c) {
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
      return 404;  // not offered on this agent
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

HttpReply Error(const absl::Status& s) {
  return {HttpStatus(s.code()), "text/plain; charset=utf-8", absl::StrCat(s.message(), "\n")};
}

// A positive integer in [1, max], else a one-line error naming `key`.
absl::StatusOr<uint32_t> Count(const std::string& key, const std::string& v, int64_t max) {
  int64_t n = 0;
  if (!absl::SimpleAtoi(v, &n) || n < 1 || n > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, "=", QuoteValue(v), ": expected an integer from 1 to ", max));
  }
  return static_cast<uint32_t>(n);
}

}  // namespace

absl::StatusOr<v1::ProfileRequest> PprofEndpoints::Parse(const std::string& path,
                                                         const HttpParams& params) const {
  v1::ProfileRequest req;
  const Endpoint* ep = nullptr;
  for (const Endpoint& e : kEndpoints) {
    if (path == absl::StrCat("/debug/pprof/", e.name)) ep = &e;
  }
  if (ep == nullptr) {
    return absl::NotFoundError(
        absl::StrCat(QuoteValue(path), ": no such profile (see /debug/pprof/: profile, faults)"));
  }
  req.set_kind(ep->kind);
  int64_t seconds = kDefaultSeconds;
  const int64_t window_s = absl::ToInt64Seconds(window_);
  for (auto it = params.begin(); it != params.end(); ++it) {
    const std::string& key = it->first;
    if (params.count(key) > 1) {
      return absl::InvalidArgumentError(absl::StrCat(QuoteValue(key), " given more than once"));
    }
    if (key == "seconds") {
      absl::StatusOr<uint32_t> n = Count(key, it->second, window_s);
      if (!n.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(n.status().message(), " (the agent keeps ", window_s, " s)"));
      }
      seconds = *n;
    } else if (key == "pid" || key == "tid") {
      absl::StatusOr<uint32_t> n = Count(key, it->second, UINT32_MAX);
      if (!n.ok()) return n.status();
      key == "pid" ? req.set_pid(*n) : req.set_tid(*n);
    } else if (key == "comm") {
      // Compiled here too, so an error names the parameter as given.
      if (absl::StatusOr<std::unique_ptr<RE2>> re = CompilePattern(it->second, "comm"); !re.ok())
        return re.status();
      req.set_comm_regex(it->second);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown parameter ", QuoteValue(key),
                                                     " (expected seconds, pid, tid, comm)"));
    }
  }
  // A default longer than a short window reads the whole window.
  if (seconds > window_s) seconds = window_s;
  req.mutable_range()->set_since_ago_ns(absl::ToInt64Nanoseconds(absl::Seconds(seconds)));
  return req;
}

HttpReply PprofEndpoints::Index() const {
  std::string body =
      "<html><head><title>/debug/pprof/</title></head><body>\n"
      "<p>vigild: profiles of this host, from the always-on profiler's window. Each answers at "
      "once with the last <code>seconds</code> (default 30). Filters: <code>pid</code>, "
      "<code>tid</code>, <code>comm</code> (RE2).</p>\n<ul>\n";
  for (const Endpoint& e : kEndpoints) {
    const absl::Status s = offered_(e.kind);
    absl::StrAppend(&body, "<li>");
    if (s.ok()) {
      absl::StrAppend(&body, "<a href=\"", e.name, "?seconds=30\">", e.name, "</a>: ", e.what);
    } else {
      absl::StrAppend(&body, e.name, ": not offered here: ", XmlEscape(s.message()));
    }
    absl::StrAppend(&body, "</li>\n");
  }
  absl::StrAppend(&body, "</ul></body></html>\n");
  return {200, "text/html; charset=utf-8", body};
}

HttpReply PprofEndpoints::Serve(const std::string& path, const HttpParams& params) const {
  if (path == "/debug/pprof/" || path == "/debug/pprof") return Index();
  absl::StatusOr<v1::ProfileRequest> req = Parse(path, params);
  if (!req.ok()) return Error(req.status());
  absl::StatusOr<v1::ProfileResponse> resp = source_(*req);
  if (!resp.ok()) return Error(resp.status());
  absl::StatusOr<std::string> gz = Gzip(ToPprof(*resp).SerializeAsString());
  if (!gz.ok()) return Error(gz.status());
  return {200, "application/octet-stream", *std::move(gz)};
}

}  // namespace vigil
