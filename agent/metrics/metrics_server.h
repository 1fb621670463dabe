// GET /metrics over HTTP (cpp-httplib, Debian's libcpp-httplib): loopback
// plaintext, or HTTPS with client-certificate verification elsewhere.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace vigil {

struct MetricsConfig {
  // "HOST:PORT"; empty turns the endpoint off.
  std::string listen = "127.0.0.1:9464";
};

class MetricsServer {
 public:
  // render: produces the exposition text for one scrape. TLS files (all or
  // none) are required for a non-loopback address unless insecure.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const MetricsConfig& config, const std::string& tls_cert, const std::string& tls_key,
      const std::string& tls_client_ca, bool insecure, std::function<std::string()> render);
  ~MetricsServer();

 private:
  MetricsServer() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace vigil
