#include "agent/ondemand/session_limiter.h"

#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/safe_text.h"

namespace vigil {

Session::Session(SessionLimiter* owner, uint64_t id, std::string kind, std::string who,
                 std::string what, absl::Duration granted)
    : owner_(owner),
      id_(id),
      kind_(std::move(kind)),
      who_(std::move(who)),
      what_(std::move(what)),
      granted_(granted),
      started_(absl::Now()),
      deadline_(started_ + granted) {}

Session::~Session() {
  // stderr is the journal under systemd.
  fprintf(stderr, "vigild: %s session %lu ended after %s (%s): %s\n", kind_.c_str(),
          static_cast<unsigned long>(id_), absl::FormatDuration(absl::Now() - started_).c_str(),
          end_reason_.empty() ? "ended" : end_reason_.c_str(), who_.c_str());
  owner_->Release(*this);
}

std::string Session::ShouldEnd() const {
  if (owner_->stopping()) return "agent stopping";
  if (absl::Now() >= deadline_) return "duration reached";
  return "";
}

void Session::SetEndReason(const std::string& reason) {
  if (end_reason_.empty()) end_reason_ = reason;
}

absl::StatusOr<std::unique_ptr<Session>> SessionLimiter::Begin(const char* kind,
                                                               const SessionPeer& who,
                                                               const std::string& what,
                                                               absl::Duration requested) {
  if (requested < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("duration must not be negative");
  }
  if (requested > max_duration_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "duration ", absl::FormatDuration(requested), " is over this agent's limit of ",
        absl::FormatDuration(max_duration_), " (vigild --session-max-duration)"));
  }
  const absl::Duration granted = requested == absl::ZeroDuration() ? max_duration_ : requested;
  uint64_t id = 0;
  {
    absl::MutexLock l(&mu_);
    if (stopping()) return absl::UnavailableError("the agent is stopping");
    if (running_ >= max_sessions_) {
      return absl::ResourceExhaustedError(
          absl::StrCat(running_,
                       " trace/probe sessions already run on this agent, its limit "
                       "(vigild --session-max)"));
    }
    ++running_;
    id = ++started_;
  }
  // Names and paths in `what` come from the client: escaped before they
  // reach the journal.
  std::string whom = SafeText(who.peer);
  if (!who.subject.empty()) absl::StrAppend(&whom, " (", SafeText(who.subject), ")");
  const std::string safe_what = SafeText(what);
  fprintf(stderr, "vigild: %s session %lu for %s: %s, up to %s\n", kind,
          static_cast<unsigned long>(id), whom.c_str(), safe_what.c_str(),
          absl::FormatDuration(granted).c_str());
  return std::unique_ptr<Session>(new Session(this, id, kind, whom, safe_what, granted));
}

void SessionLimiter::Release(const Session&) {
  absl::MutexLock l(&mu_);
  --running_;
}

void SessionLimiter::Shutdown(absl::Duration wait) {
  stopping_.store(true, std::memory_order_relaxed);
  absl::MutexLock l(&mu_);
  auto none = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_ == 0; };
  mu_.AwaitWithTimeout(absl::Condition(&none), wait);
}

int SessionLimiter::running() const {
  absl::MutexLock l(&mu_);
  return running_;
}

uint64_t SessionLimiter::started_total() const {
  absl::MutexLock l(&mu_);
  return started_;
}

}  // namespace vigil
