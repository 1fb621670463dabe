// The bound every on-demand session (trace, probe) goes through: how many run
// at once, how long each may run, and one journal line when each begins and
// ends (who, what, for how long). The agent's stop ends them all.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace vigil {

// Who asked: the gRPC peer ("ipv4:10.0.0.5:4123", "unix:") and, over mutual
// TLS, the client certificate's subject.
struct SessionPeer {
  std::string peer;
  std::string subject;
};

// Where a session writes its stream, and how it learns that the client left.
// write returns false once the client is gone.
template <typename Msg>
struct SessionSink {
  std::function<bool(const Msg&)> write;
  std::function<bool()> cancelled;
};

class SessionLimiter;

// One running session: holds its slot until destroyed, then logs its end.
class Session {
 public:
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  absl::Duration granted() const { return granted_; }
  absl::Time deadline() const { return deadline_; }
  // Why the session must end now ("duration reached", "agent stopping"), or
  // "" while it may go on. Cheap: called every poll.
  std::string ShouldEnd() const;
  // The reason logged at the end (first one set wins).
  void SetEndReason(const std::string& reason);

 private:
  friend class SessionLimiter;
  Session(SessionLimiter* owner, uint64_t id, std::string kind, std::string who, std::string what,
          absl::Duration granted);

  SessionLimiter* const owner_;
  const uint64_t id_;
  const std::string kind_, who_, what_;
  const absl::Duration granted_;
  const absl::Time started_;
  const absl::Time deadline_;
  std::string end_reason_;
};

class SessionLimiter {
 public:
  SessionLimiter(int max_sessions, absl::Duration max_duration)
      : max_sessions_(max_sessions), max_duration_(max_duration) {}

  // A slot for one session of `kind` ("trace", "probe") doing `what`, for
  // `requested` (0: the maximum). INVALID_ARGUMENT for a negative or
  // too-long duration, RESOURCE_EXHAUSTED when every slot is taken,
  // UNAVAILABLE once the agent is stopping.
  absl::StatusOr<std::unique_ptr<Session>> Begin(const char* kind, const SessionPeer& who,
                                                 const std::string& what, absl::Duration requested);
  // Every session ends at its next ShouldEnd(); waits up to `wait` for them.
  void Shutdown(absl::Duration wait);

  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }
  int running() const;
  uint64_t started_total() const;
  int max_sessions() const { return max_sessions_; }
  absl::Duration max_duration() const { return max_duration_; }

 private:
  friend class Session;
  void Release(const Session& s);

  const int max_sessions_;
  const absl::Duration max_duration_;
  std::atomic<bool> stopping_{false};
  mutable absl::Mutex mu_;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t started_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace vigil
