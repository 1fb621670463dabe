#include "client/agent_client.h"

#include <chrono>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/read_file.h"

namespace vigil::cli {
namespace {

// --cert and --key may be left out (a CA alone verifies the agent).
absl::StatusOr<std::string> ReadPem(const std::string& path, const char* flag) {
  if (path.empty()) return std::string();
  return ReadFlagFile(path, flag);
}

// What a valid ConnectOptions asks for: plaintext (Unix socket or
// --insecure) or TLS with these PEMs.
struct Transport {
  bool tls = false;
  std::string ca, cert, key;
};

absl::StatusOr<Transport> CheckTransport(const ConnectOptions& opts) {
  Transport t;
  if (absl::StartsWith(opts.agent, "unix:")) {
    if (opts.agent.size() <= 5) return absl::InvalidArgumentError("--agent unix: needs a path");
    return t;
  }
  size_t colon = opts.agent.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == opts.agent.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--agent \"", opts.agent, "\": expected unix:/path or host:port"));
  }
  if (opts.ca.empty()) {
    if (opts.insecure) return t;
    return absl::InvalidArgumentError(absl::StrCat(
        "--agent ", opts.agent, ": TCP agents need --ca (and --cert/--key), or --insecure"));
  }
  t.tls = true;
  absl::StatusOr<std::string> ca = ReadPem(opts.ca, "--ca");
  if (!ca.ok()) return ca.status();
  absl::StatusOr<std::string> cert = ReadPem(opts.cert, "--cert");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem(opts.key, "--key");
  if (!key.ok()) return key.status();
  t.ca = *std::move(ca);
  t.cert = *std::move(cert);
  t.key = *std::move(key);
  return t;
}

}  // namespace

absl::Status CheckConnect(const ConnectOptions& opts) { return CheckTransport(opts).status(); }

absl::StatusOr<std::unique_ptr<v1::Vigil::Stub>> Connect(const ConnectOptions& opts) {
  absl::StatusOr<Transport> t = CheckTransport(opts);
  if (!t.ok()) return t.status();
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (t->tls) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = t->ca;
    ssl.pem_cert_chain = t->cert;
    ssl.pem_private_key = t->key;
    creds = grpc::SslCredentials(ssl);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  return v1::Vigil::NewStub(grpc::CreateCustomChannel(opts.agent, creds, args));
}

void SetDeadline(grpc::ClientContext* ctx, const ConnectOptions& opts) {
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(absl::ToInt64Milliseconds(opts.timeout)));
}

absl::Status FromGrpc(const grpc::Status& s, const ConnectOptions& opts) {
  if (s.ok()) return absl::OkStatus();
  const auto code = static_cast<absl::StatusCode>(s.error_code());
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE ||
      s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return absl::Status(code, absl::StrCat("agent ", opts.agent, " unreachable (",
                                           s.error_message(), "); is vigild running?"));
  }
  return absl::Status(code, absl::StrCat("agent ", opts.agent, ": ", s.error_message()));
}

}  // namespace vigil::cli
