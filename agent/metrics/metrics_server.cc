#include "agent/metrics/metrics_server.h"

#include <httplib.h>

#include "absl/strings/str_cat.h"
#include "agent/server/listen.h"

namespace vigil {

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const MetricsConfig& config, const std::string& tls_cert, const std::string& tls_key,
    const std::string& tls_client_ca, bool insecure, std::function<std::string()> render,
    std::unique_ptr<const PprofEndpoints> pprof) {
  absl::StatusOr<ParsedListen> p = ParseListenAddress(config.listen);
  if (!p.ok() || p->is_unix) {
    return absl::InvalidArgumentError(absl::StrCat("metrics-listen \"", config.listen,
                                                   "\": expected HOST:PORT (empty turns it off)"));
  }
  const bool tls = !tls_cert.empty() && !tls_key.empty() && !tls_client_ca.empty();
  if (!p->loopback && !tls && !insecure) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics-listen ", config.listen,
                     ": a non-loopback address needs --tls-cert, --tls-key and --tls-client-ca"));
  }
  std::unique_ptr<MetricsServer> m(new MetricsServer());
  if (tls && !p->loopback) {
    m->server_ = std::make_unique<httplib::SSLServer>(tls_cert.c_str(), tls_key.c_str(),
                                                      tls_client_ca.c_str());
  } else {
    m->server_ = std::make_unique<httplib::Server>();
  }
  if (!m->server_->is_valid()) {
    return absl::InvalidArgumentError("metrics: TLS certificate or key could not be loaded");
  }
  m->server_->new_task_queue = [] { return new httplib::ThreadPool(2); };
  m->server_->set_read_timeout(5, 0);
  m->server_->set_write_timeout(5, 0);
  m->server_->Get("/metrics", [render](const httplib::Request&, httplib::Response& res) {
    res.set_content(render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  if (pprof != nullptr) {
    m->pprof_ = std::move(pprof);
    const PprofEndpoints* p = m->pprof_.get();
    m->server_->Get(R"(/debug/pprof(/.*)?)",
                    [p](const httplib::Request& req, httplib::Response& res) {
                      HttpReply r = p->Serve(req.path, req.params);
                      res.status = r.status;
                      res.set_content(std::move(r.body), r.content_type);
                    });
  }
  if (!m->server_->bind_to_port(p->host, p->port)) {
    return absl::UnavailableError(absl::StrCat("metrics: cannot listen on ", config.listen));
  }
  httplib::Server* s = m->server_.get();
  m->thread_ = std::thread([s] { s->listen_after_bind(); });
  return m;
}

MetricsServer::~MetricsServer() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace vigil
