// Flags shared by `vigil hot`, `vigil profile` and `vigil flamegraph`:
// which threads, which frames, which time range.
#pragma once

#include <getopt.h>

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "client/cli.h"
#include "vigil/v1/vigil.pb.h"

namespace vigil::cli {

enum ProfileFlagId {
  kProfPid = kFirstOwnFlag, kProfTid, kProfComm, kProfSince, kProfUntil, kProfUserOnly,
  kProfKernelOnly, kProfFirstOwn,
};

struct ProfileFilterFlags {
  uint32_t pid = 0, tid = 0;
  std::string comm_regex;
  absl::Duration since = absl::ZeroDuration(), until = absl::ZeroDuration();
  v1::FrameFilter frames = v1::FRAME_FILTER_ALL;
  bool user_only = false, kernel_only = false;
};

extern const char kProfileFilterHelp[];

// The filter options, for WithCommonOptions.
std::vector<option> ProfileFilterOptions();
// Handles a filter flag. Returns false (with *err set) on a bad value.
bool HandleProfileFilterFlag(int id, const char* value, ProfileFilterFlags* f, std::string* err);
// Cross-flag checks after parsing ("" when fine).
std::string CheckProfileFilter(const ProfileFilterFlags& f);

// Runs `req` through `call`, mapping errors to exit codes.
template <typename Req>
void ApplyProfileFilter(const ProfileFilterFlags& f, Req* req) {
  req->set_pid(f.pid);
  req->set_tid(f.tid);
  req->set_comm_regex(f.comm_regex);
  req->set_frames(f.frames);
  req->mutable_range()->set_since_ago_ns(absl::ToInt64Nanoseconds(f.since));
  req->mutable_range()->set_until_ago_ns(absl::ToInt64Nanoseconds(f.until));
}

}  // namespace vigil::cli
