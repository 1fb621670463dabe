// Turns a ListenConfig into a listening gRPC server: a Unix socket by
// default (mode 0660), TCP only with mutual TLS unless explicitly insecure
// on loopback.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "agent/config.h"
#include "grpcpp/grpcpp.h"

namespace vigil {

struct ParsedListen {
  bool is_unix = false;
  std::string path;  // unix socket path
  std::string host;  // tcp
  int port = 0;
  bool loopback = false;
};

// Pure: validates "unix:/abs/path" or "host:port" / "[v6]:port".
absl::StatusOr<ParsedListen> ParseListenAddress(const std::string& address);

// Checks the TLS/insecure rules for a parsed address.
absl::Status ValidateListen(const ParsedListen& p, const ListenConfig& config);

// For a Unix socket about to be bound at `path`: creates the parent
// directory and removes a stale socket, refusing if another agent answers.
absl::Status PrepareUnixSocketPath(const std::string& path);

// Mode 0660, group vigil when that group exists: who may connect.
absl::Status RestrictUnixSocket(const std::string& path);

// Builds and starts the server with `service` registered. For Unix sockets,
// creates the parent directory, removes a stale socket (refusing if another
// agent answers on it), and sets mode 0660.
absl::StatusOr<std::unique_ptr<grpc::Server>> StartServer(const ListenConfig& config,
                                                          grpc::Service* service);

}  // namespace vigil
