// GET /metrics, and /debug/pprof (pprof_http.h), over HTTP (cpp-httplib,
// Debian's libcpp-httplib): a Unix socket or loopback in plaintext, or HTTPS
// with client-certificate verification elsewhere.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "agent/metrics/pprof_http.h"

namespace httplib {
class Server;
}

namespace vigil {

struct MetricsConfig {
  // "HOST:PORT" or "unix:/PATH" (mode 0660, group vigil); empty turns the
  // endpoint off.
  std::string listen = "127.0.0.1:9464";
};

class MetricsServer {
 public:
  // render: produces the exposition text for one scrape; pprof (may be
  // null) answers /debug/pprof. TLS files (all or none) are required for a
  // non-loopback address unless insecure.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const MetricsConfig& config, const std::string& tls_cert, const std::string& tls_key,
      const std::string& tls_client_ca, bool insecure, std::function<std::string()> render,
      std::unique_ptr<const PprofEndpoints> pprof);
  ~MetricsServer();

 private:
  MetricsServer() = default;
  std::unique_ptr<const PprofEndpoints> pprof_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::string unix_path_;  // removed when the server stops
};

}  // namespace vigil
