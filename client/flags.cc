#include "client/flags.h"

#include <CLI/CLI.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/duration.h"
#include "re2/re2.h"

namespace vigil::cli {

void BadValue(const std::string& name, const std::string& value, const std::string& want) {
  throw CLI::ValidationError(absl::StrCat(name, " ", QuoteValue(value), ": expected ", want));
}

void AddCount(CLI::App& app, const std::string& name, uint32_t* out, uint32_t min, uint32_t max,
              const std::string& want, const std::string& help) {
  app.add_option_function<std::string>(
         name,
         [=](const std::string& v) {
           uint32_t n = 0;
           if (!absl::SimpleAtoi(v, &n) || n < min || n > max) BadValue(name, v, want);
           *out = n;
         },
         help)
      ->type_name("N");
}

void AddDuration(CLI::App& app, const std::string& name, absl::Duration* out, absl::Duration min,
                 absl::Duration max, const std::string& help) {
  app.add_option_function<std::string>(
         name,
         [=](const std::string& v) {
           absl::StatusOr<absl::Duration> d = ParseBoundedDuration(v, min, max, name);
           if (!d.ok()) throw CLI::ValidationError(std::string(d.status().message()));
           *out = *d;
         },
         help)
      ->type_name("DURATION");
}

void AddRegex(CLI::App& app, const std::string& name, std::string* out, const std::string& help) {
  app.add_option_function<std::string>(
         name,
         [=](const std::string& v) {
           RE2::Options o;
           o.set_log_errors(false);
           RE2 re(v, o);
           // RE2's complaint quotes the pattern: cut like the value.
           if (!re.ok())
             BadValue(name, v, absl::StrCat("an RE2 regex (", QuoteValue(re.error()), ")"));
           *out = v;
         },
         help)
      ->type_name("REGEX");
}

void AddChoice(CLI::App& app, const std::string& name, std::vector<std::string> choices,
               std::function<void(size_t)> set, const std::string& want, const std::string& help) {
  app.add_option_function<std::string>(
         name,
         [=](const std::string& v) {
           for (size_t i = 0; i < choices.size(); ++i) {
             if (v == choices[i]) return set(i);
           }
           BadValue(name, v, want);
         },
         help)
      ->type_name(absl::StrJoin(choices, "|"));
}

void AddText(CLI::App& app, const std::string& names, std::string* out,
             const std::string& value_name, const std::string& help) {
  const std::string name = names.substr(names.rfind(',') + 1);  // "-o,--output": --output
  app.add_option_function<std::string>(
         names,
         [=](const std::string& v) {
           if (v.empty()) throw CLI::ValidationError(absl::StrCat(name, " needs a value"));
           *out = v;
         },
         help)
      ->type_name(value_name);
}

void AddSwitch(CLI::App& app, const std::string& name, bool* out, const std::string& help) {
  app.add_flag(name, *out, help);
}

void AddSince(CLI::App& app, absl::Duration* since) {
  AddDuration(app, "--since", since, absl::Nanoseconds(1), absl::Hours(24 * 30),
              "start of the range, that long ago (default: whole window)");
}

void AddTop(CLI::App& app, uint32_t* top, const std::string& help) {
  AddCount(app, "--top", top, 1, 10000, "1-10000", help);
}

void AddRange(CLI::App& app, absl::Duration* since, absl::Duration* until) {
  AddSince(app, since);
  AddDuration(app, "--until", until, absl::Nanoseconds(1), absl::Hours(24 * 30),
              "end of the range, that long ago (default: now)");
}

std::string CheckRange(absl::Duration since, absl::Duration until) {
  if (since != absl::ZeroDuration() && until >= since) {
    return "--until must be more recent than --since (smaller duration)";
  }
  if (until != absl::ZeroDuration() && since == absl::ZeroDuration())
    return "--until needs --since";
  return "";
}

void AddProfileFilter(CLI::App& app, ProfileFilter* f) {
  AddEnum(app, "--kind", {{"cpu", v1::PROFILE_KIND_CPU}, {"memory", v1::PROFILE_KIND_MEMORY}},
          &f->kind, "cpu or memory",
          "cpu: sampled CPU time (default); memory: sampled page faults, i.e. where memory is "
          "first touched, in bytes (faults x 4 KiB)");
  AddCount(app, "--pid", &f->pid, 1, UINT32_MAX, "a positive integer", "only this process");
  AddCount(app, "--tid", &f->tid, 1, UINT32_MAX, "a positive integer", "only this thread");
  AddRegex(app, "--comm", &f->comm_regex,
           "only threads whose thread or process name matches (RE2)");
  AddRange(app, &f->since, &f->until);
  AddSwitch(app, "--user-only", &f->user_only, "user frames only (kernel frames dropped)");
  AddSwitch(app, "--kernel-only", &f->kernel_only, "kernel frames only (user frames dropped)");
}

std::string CheckProfileFilter(const ProfileFilter& f) {
  if (f.user_only && f.kernel_only) return "--user-only and --kernel-only exclude each other";
  return CheckRange(f.since, f.until);
}

}  // namespace vigil::cli
