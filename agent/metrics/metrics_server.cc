#include "agent/metrics/metrics_server.h"

#include <httplib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/server/listen.h"
#include "common/duration.h"

namespace vigil {
namespace {

// cpp-httplib 0.11 (Debian 12) binds only TCP; its accept loop serves
// whatever listening socket svr_sock_ holds, so a Unix one is given here.
class UnixHttpServer : public httplib::Server {
 public:
  absl::Status Bind(const std::string& path) {
    if (absl::Status s = PrepareUnixSocketPath(path); !s.ok()) return s;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return absl::InternalError(absl::StrCat("metrics: socket: ", strerror(errno)));
    sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      const int err = errno;
      close(fd);
      return absl::UnavailableError(
          absl::StrCat("metrics: cannot listen on unix:", path, ": ", strerror(err)));
    }
    // Restricted before listen(): nobody outside the group connects even once.
    absl::Status s = RestrictUnixSocket(path);
    if (s.ok() && ::listen(fd, 64) != 0) {
      s = absl::UnavailableError(absl::StrCat("metrics: listen: ", strerror(errno)));
    }
    if (!s.ok()) {
      close(fd);
      unlink(path.c_str());
      return s;
    }
    svr_sock_ = fd;
    return absl::OkStatus();
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const MetricsConfig& config, const std::string& tls_cert, const std::string& tls_key,
    const std::string& tls_client_ca, bool insecure, std::function<std::string()> render,
    std::unique_ptr<const PprofEndpoints> pprof) {
  absl::StatusOr<ParsedListen> p = ParseListenAddress(config.listen);
  if (!p.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics-listen ", QuoteValue(config.listen),
                     ": expected HOST:PORT or unix:/PATH (empty turns it off)"));
  }
  const bool tls = !tls_cert.empty() && !tls_key.empty() && !tls_client_ca.empty();
  if (!p->is_unix && !p->loopback && !tls && !insecure) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics-listen ", config.listen,
                     ": a non-loopback address needs --tls-cert, --tls-key and --tls-client-ca"));
  }
  std::unique_ptr<MetricsServer> m(new MetricsServer());
  if (p->is_unix) {
    m->server_ = std::make_unique<UnixHttpServer>();
  } else if (tls && !p->loopback) {
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
  if (p->is_unix) {
    absl::Status bound = static_cast<UnixHttpServer*>(m->server_.get())->Bind(p->path);
    if (!bound.ok()) return bound;
    m->unix_path_ = p->path;
  } else if (!m->server_->bind_to_port(p->host, p->port)) {
    return absl::UnavailableError(absl::StrCat("metrics: cannot listen on ", config.listen));
  }
  httplib::Server* s = m->server_.get();
  m->thread_ = std::thread([s] { s->listen_after_bind(); });
  // stop() does nothing until the accept loop runs: wait for it, so a
  // destructor right after Start cannot leave that loop running forever.
  for (int i = 0; i < 2000 && !s->is_running(); ++i) absl::SleepFor(absl::Milliseconds(1));
  return m;
}

MetricsServer::~MetricsServer() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
  if (!unix_path_.empty()) unlink(unix_path_.c_str());
}

}  // namespace vigil
