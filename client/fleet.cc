#include "client/fleet.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <fstream>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace vigil::cli {
namespace {

// A thousand agents fit in a few tens of KiB either way; this only keeps a
// wrong file (a log, a device) from being read whole.
constexpr size_t kMaxAgentsFileBytes = 4 << 20;

absl::StatusOr<std::string> ReadBounded(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return absl::InvalidArgumentError(absl::StrCat("--agents-file ", path, ": cannot read"));
  std::string text(kMaxAgentsFileBytes + 1, '\0');
  f.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (f.bad()) {
    return absl::InvalidArgumentError(absl::StrCat("--agents-file ", path, ": cannot read"));
  }
  text.resize(static_cast<size_t>(f.gcount()));
  if (text.size() > kMaxAgentsFileBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("--agents-file ", path, ": larger than ", kMaxAgentsFileBytes >> 20, " MiB"));
  }
  return text;
}

// A Prometheus target ("host:port", "host", "[v6]:port", "[v6]") -> its
// host, IPv6 kept in brackets so that host + ":port" is a gRPC address.
absl::StatusOr<std::string> TargetHost(absl::string_view t) {
  if (absl::ConsumePrefix(&t, "[")) {
    const size_t close = t.find(']');
    if (close == 0 || close == absl::string_view::npos ||
        (close + 1 != t.size() && t[close + 1] != ':')) {
      return absl::InvalidArgumentError("not host:port");
    }
    return absl::StrCat("[", t.substr(0, close), "]");
  }
  const size_t colon = t.find(':');
  if (colon != t.rfind(':')) return absl::InvalidArgumentError("an IPv6 address needs [brackets]");
  absl::string_view host = t.substr(0, colon);
  if (host.empty()) return absl::InvalidArgumentError("no host");
  return std::string(host);
}

// Prometheus file_sd: [{"targets": ["host:9464", ...], "labels": {...}}].
// The targets are vigild's metrics address; the gRPC port comes from the
// group's "vigil_grpc_port" label, so one inventory serves both.
absl::StatusOr<std::vector<std::string>> FileSdAgents(const std::string& path,
                                                      const std::string& text) {
  auto bad = [&path](auto&&... what) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--agents-file ", path, " (Prometheus file_sd): ", std::forward<decltype(what)>(what)...));
  };
  google::protobuf::ListValue groups;
  // protobuf 3.21's own Status type, not absl's.
  const auto s = google::protobuf::util::JsonStringToMessage(text, &groups);
  if (!s.ok()) {
    // Protobuf's message may go on with a snippet of the input: one line.
    const std::string message(s.message());
    const std::string why(absl::StripAsciiWhitespace(
        std::vector<absl::string_view>(absl::StrSplit(message, '\n'))[0]));
    return bad("not a JSON list of target groups: ", why);
  }
  std::vector<std::string> out;
  for (int i = 0; i < groups.values_size(); ++i) {
    const google::protobuf::Value& g = groups.values(i);
    if (!g.has_struct_value()) return bad("group ", i, " is not an object");
    const auto& fields = g.struct_value().fields();
    for (const auto& [key, v] : fields) {
      if (key != "targets" && key != "labels") {
        return bad("group ", i, ": unknown key \"", key, "\" (only targets and labels)");
      }
    }
    auto targets = fields.find("targets");
    if (targets == fields.end() || !targets->second.has_list_value() ||
        targets->second.list_value().values_size() == 0) {
      return bad("group ", i, " has no \"targets\" list of host:port strings");
    }
    auto labels = fields.find("labels");
    const google::protobuf::Value* port = nullptr;
    if (labels != fields.end()) {
      if (!labels->second.has_struct_value()) return bad("group ", i, ": labels is not an object");
      auto p = labels->second.struct_value().fields().find("vigil_grpc_port");
      if (p != labels->second.struct_value().fields().end()) port = &p->second;
    }
    if (port == nullptr) {
      return bad("group ", i,
                 " has no vigil_grpc_port label (its targets are metrics ports): add \"labels\": "
                 "{\"vigil_grpc_port\": \"7878\"} with vigild's --listen port");
    }
    uint32_t grpc_port = 0;
    if (port->kind_case() != google::protobuf::Value::kStringValue ||
        !absl::SimpleAtoi(port->string_value(), &grpc_port) || grpc_port == 0 ||
        grpc_port > 65535) {
      return bad("group ", i, ": vigil_grpc_port must be a port number as a string, 1-65535");
    }
    for (const google::protobuf::Value& t : targets->second.list_value().values()) {
      if (t.kind_case() != google::protobuf::Value::kStringValue) {
        return bad("group ", i, ": a target is not a string");
      }
      absl::StatusOr<std::string> host = TargetHost(t.string_value());
      if (!host.ok()) {
        return bad("group ", i, ": target \"", t.string_value(), "\": ", host.status().message());
      }
      out.push_back(absl::StrCat(*host, ":", grpc_port));
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<ConnectOptions>> ResolveAgents(const std::vector<std::string>& agents,
                                                          const std::string& agents_file,
                                                          const ConnectOptions& shared) {
  std::vector<std::string> addrs = agents;
  if (!agents_file.empty()) {
    absl::StatusOr<std::string> text = ReadBounded(agents_file);
    if (!text.ok()) return text.status();
    if (absl::StripLeadingAsciiWhitespace(*text).substr(0, 1) == "[") {
      absl::StatusOr<std::vector<std::string>> sd = FileSdAgents(agents_file, *text);
      if (!sd.ok()) return sd.status();
      addrs.insert(addrs.end(), sd->begin(), sd->end());
    } else {
      for (absl::string_view line : absl::StrSplit(*text, '\n')) {
        absl::string_view l = absl::StripAsciiWhitespace(line);
        if (l.empty() || l[0] == '#') continue;
        addrs.emplace_back(l);
      }
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
