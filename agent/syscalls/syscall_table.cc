#include "agent/syscalls/syscall_table.h"

#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

namespace vigil {
namespace {

struct Entry {
  int nr;
  const char* name;
};

constexpr Entry kTable[] = {
#include "gen/syscall_table.inc"
};

const absl::flat_hash_map<int, std::string_view>& ByNumber() {
  static const auto* m = [] {
    auto* m = new absl::flat_hash_map<int, std::string_view>();
    for (const Entry& e : kTable) m->emplace(e.nr, e.name);
    return m;
  }();
  return *m;
}

}  // namespace

std::string_view SyscallNameOrEmpty(int nr) {
  auto it = ByNumber().find(nr);
  return it == ByNumber().end() ? std::string_view() : it->second;
}

std::string SyscallName(int nr) {
  std::string_view n = SyscallNameOrEmpty(nr);
  return n.empty() ? absl::StrCat("syscall_", nr) : std::string(n);
}

int SyscallNumber(std::string_view name) {
  for (const Entry& e : kTable) {
    if (name == e.name) return e.nr;
  }
  return -1;
}

}  // namespace vigil
