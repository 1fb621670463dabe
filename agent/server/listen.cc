#include "agent/server/listen.h"

#include <arpa/inet.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/duration.h"
#include "common/read_file.h"

namespace vigil {
namespace {

bool SocketAnswers(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

absl::Status MakeDirs(const std::string& dir) {
  if (dir.empty()) return absl::OkStatus();
  struct stat st;
  if (stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode))
      return absl::FailedPreconditionError(absl::StrCat(dir, " is not a directory"));
    return absl::OkStatus();
  }
  size_t slash = dir.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    if (absl::Status s = MakeDirs(dir.substr(0, slash)); !s.ok()) return s;
  }
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return absl::FailedPreconditionError(absl::StrCat("creating ", dir, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status PrepareUnixSocketPath(const std::string& path) {
  size_t slash = path.rfind('/');
  if (absl::Status s = MakeDirs(path.substr(0, slash)); !s.ok()) return s;
  if (access(path.c_str(), F_OK) == 0) {
    if (SocketAnswers(path)) {
      return absl::AlreadyExistsError(
          absl::StrCat(path, ": another agent is already listening there"));
    }
    unlink(path.c_str());  // stale socket from a crashed agent
  }
  return absl::OkStatus();
}

absl::Status RestrictUnixSocket(const std::string& path) {
  if (chmod(path.c_str(), 0660) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("chmod 0660 ", path, ": ", strerror(errno)));
  }
  // Members of group vigil may query the agent. Under systemd (Group=vigil)
  // the socket already has that group; started by hand, give it.
  if (const group* g = getgrnam("vigil"); g != nullptr && getegid() != g->gr_gid) {
    if (chown(path.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("chgrp vigil ", path, ": ", strerror(errno)));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ParsedListen> ParseListenAddress(const std::string& address) {
  ParsedListen p;
  if (absl::StartsWith(address, "unix:")) {
    p.is_unix = true;
    p.path = std::string(absl::StripPrefix(address, "unix:"));
    if (p.path.empty() || p.path[0] != '/') {
      return absl::InvalidArgumentError(absl::StrCat("listen address ", QuoteValue(address),
                                                     ": unix socket path must be absolute"));
    }
    if (p.path.size() >= sizeof(sockaddr_un::sun_path)) {
      return absl::InvalidArgumentError(absl::StrCat("listen address ", QuoteValue(address),
                                                     ": socket path longer than 107 bytes"));
    }
    return p;
  }
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address ", QuoteValue(address), ": expected unix:/path or host:port"));
  }
  p.host = address.substr(0, colon);
  if (p.host.size() >= 2 && p.host.front() == '[' && p.host.back() == ']') {
    p.host = p.host.substr(1, p.host.size() - 2);
  }
  if (!absl::SimpleAtoi(address.substr(colon + 1), &p.port) || p.port <= 0 || p.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address ", QuoteValue(address), ": port must be 1-65535"));
  }
  in_addr a4;
  in6_addr a6;
  if (p.host == "localhost") {
    p.loopback = true;
  } else if (inet_pton(AF_INET, p.host.c_str(), &a4) == 1) {
    p.loopback = (ntohl(a4.s_addr) >> 24) == 127;
  } else if (inet_pton(AF_INET6, p.host.c_str(), &a6) == 1) {
    p.loopback = IN6_IS_ADDR_LOOPBACK(&a6);
  }
  return p;
}

absl::Status ValidateListen(const ParsedListen& p, const ListenConfig& c) {
  const bool any_tls = !c.tls_cert.empty() || !c.tls_key.empty() || !c.tls_client_ca.empty();
  const bool all_tls = !c.tls_cert.empty() && !c.tls_key.empty() && !c.tls_client_ca.empty();
  if (p.is_unix) {
    if (any_tls)
      return absl::InvalidArgumentError("--tls-* flags apply only to a TCP --listen address");
    return absl::OkStatus();
  }
  if (any_tls && !all_tls) {
    return absl::InvalidArgumentError("TLS needs all of --tls-cert, --tls-key and --tls-client-ca");
  }
  if (!all_tls && !c.insecure) {
    return absl::InvalidArgumentError(absl::StrCat(
        "refusing plaintext TCP listener on ", QuoteValue(absl::StrCat(p.host, ":", p.port)),
        ": give --tls-cert, --tls-key and --tls-client-ca (mutual TLS)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<grpc::Server>> StartServer(const ListenConfig& config,
                                                          grpc::Service* service) {
  absl::StatusOr<ParsedListen> p = ParseListenAddress(config.address);
  if (!p.ok()) return p.status();
  if (absl::Status s = ValidateListen(*p, config); !s.ok()) return s;

  std::shared_ptr<grpc::ServerCredentials> creds;
  if (p->is_unix) {
    if (absl::Status s = PrepareUnixSocketPath(p->path); !s.ok()) return s;
    creds = grpc::InsecureServerCredentials();  // access is by file mode
  } else if (!config.tls_cert.empty()) {
    grpc::SslServerCredentialsOptions opts(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    absl::StatusOr<std::string> cert = ReadFlagFile(config.tls_cert, "--tls-cert");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadFlagFile(config.tls_key, "--tls-key");
    if (!key.ok()) return key.status();
    absl::StatusOr<std::string> ca = ReadFlagFile(config.tls_client_ca, "--tls-client-ca");
    if (!ca.ok()) return ca.status();
    opts.pem_root_certs = *ca;
    opts.pem_key_cert_pairs.push_back({*key, *cert});
    creds = grpc::SslServerCredentials(opts);
  } else {
    fprintf(stderr,
            "vigild: WARNING: plaintext TCP listener on %s: anyone who can reach it reads "
            "every process's data\n",
            config.address.c_str());
    creds = grpc::InsecureServerCredentials();
  }

  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(config.address, creds, p->is_unix ? nullptr : &bound_port);
  builder.RegisterService(service);
  builder.SetMaxReceiveMessageSize(1 << 20);
  // Bounds on what clients can make the agent hold: streams per connection
  // and handler threads overall (a request beyond them waits or fails with
  // RESOURCE_EXHAUSTED instead of growing the agent).
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, config.max_streams_per_connection);
  grpc::ResourceQuota quota("vigild");
  quota.SetMaxThreads(config.max_handler_threads);
  builder.SetResourceQuota(quota);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || (!p->is_unix && bound_port == 0)) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", config.address));
  }
  if (p->is_unix) {
    if (absl::Status s = RestrictUnixSocket(p->path); !s.ok()) return s;
  }
  return server;
}

}  // namespace vigil
