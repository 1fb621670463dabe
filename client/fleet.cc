#include "client/fleet.h"

#include <fstream>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace vigil::cli {

absl::StatusOr<std::vector<ConnectOptions>> ResolveAgents(const std::vector<std::string>& agents,
                                                          const std::string& agents_file,
                                                          const ConnectOptions& shared) {
  std::vector<std::string> addrs = agents;
  if (!agents_file.empty()) {
    std::ifstream f(agents_file);
    if (!f)
      return absl::InvalidArgumentError(
          absl::StrCat("--agents-file ", agents_file, ": cannot read"));
    std::string line;
    while (std::getline(f, line)) {
      absl::string_view l = absl::StripAsciiWhitespace(line);
      if (l.empty() || l[0] == '#') continue;
      addrs.emplace_back(l);
    }
    if (addrs.size() == agents.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--agents-file ", agents_file, ": no agents listed"));
    }
  }
  if (addrs.empty()) addrs.push_back(kDefaultAgent);
  std::vector<ConnectOptions> out;
  std::set<std::string> seen;
  for (const std::string& a : addrs) {
    if (!seen.insert(a).second) continue;
    ConnectOptions c = shared;
    c.agent = a;
    out.push_back(std::move(c));
  }
  if (out.size() > kMaxAgents) {
    return absl::InvalidArgumentError(
        absl::StrCat(out.size(), " agents given; at most ", kMaxAgents, " per query"));
  }
  return out;
}

}  // namespace vigil::cli
