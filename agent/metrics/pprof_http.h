// /debug/pprof on the metrics listener, in Go's net/http/pprof convention, so
// the profile stores SREs already run (Parca, Grafana Pyroscope via Alloy)
// and `go tool pprof` pull vigild's profiles as they pull a Go service's:
//   /debug/pprof/          what is offered (HTML, as Go's index)
//   /debug/pprof/profile   CPU: sampled stacks, gzipped profile.proto
//   /debug/pprof/faults    memory: sampled page faults (bytes newly touched)
// Query: seconds=N (default 30, at most the agent's window), pid=, tid=,
// comm= (RE2). Anything else is HTTP 400 with one line.
//
// The answer comes at once, from the last N seconds of the always-on
// profiler's window: Go's handler sleeps N seconds because it only profiles
// while asked; vigild has already recorded them, and a handler that slept
// would hold one of the listener's two threads (and /metrics) for N seconds.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "vigil/v1/vigil.pb.h"

namespace vigil {

struct HttpReply {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// The URL query, as cpp-httplib parses it (a key may repeat).
using HttpParams = std::multimap<std::string, std::string>;

class PprofEndpoints {
 public:
  // Profile of the request's kind and range from the store.
  using Source = std::function<absl::StatusOr<v1::ProfileResponse>(const v1::ProfileRequest&)>;
  // OK when samples of this kind are taken, else why not.
  using Offered = std::function<absl::Status(v1::ProfileKind)>;

  PprofEndpoints(Source source, Offered offered, absl::Duration window)
      : source_(std::move(source)), offered_(std::move(offered)), window_(window) {}

  // `path` starts with /debug/pprof.
  HttpReply Serve(const std::string& path, const HttpParams& params) const;

  // The request a profile path and query stand for; INVALID_ARGUMENT with
  // one line for an unknown path (NOT_FOUND), parameter or bad value.
  absl::StatusOr<v1::ProfileRequest> Parse(const std::string& path, const HttpParams& params) const;

 private:
  HttpReply Index() const;

  const Source source_;
  const Offered offered_;
  const absl::Duration window_;
};

}  // namespace vigil
