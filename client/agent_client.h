// Connecting to one agent: address parsing, credentials, deadlines, and
// turning transport failures into one-line messages.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "vigil/v1/vigil.grpc.pb.h"

namespace vigil::cli {

inline constexpr char kDefaultAgent[] = "unix:/run/vigil/vigild.sock";

struct ConnectOptions {
  std::string agent = kDefaultAgent;  // unix:/path or host:port
  std::string ca, cert, key;          // TLS for host:port
  bool insecure = false;              // plaintext host:port
  absl::Duration timeout = absl::Seconds(5);
};

// INVALID_ARGUMENT for a malformed address or missing TLS files.
absl::StatusOr<std::unique_ptr<v1::Vigil::Stub>> Connect(const ConnectOptions& opts);
// The same checks (and TLS file reads) without a channel: gRPC is not
// started, so checking every agent up front costs no start and shutdown of
// gRPC's threads before the command connects.
absl::Status CheckConnect(const ConnectOptions& opts);

// Applies the deadline to a context.
void SetDeadline(grpc::ClientContext* ctx, const ConnectOptions& opts);

// "agent X: unreachable (...)" / "agent X: <server message>" with the gRPC code.
absl::Status FromGrpc(const grpc::Status& s, const ConnectOptions& opts);

}  // namespace vigil::cli
