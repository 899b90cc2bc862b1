#include "agent/metrics_server.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <atomic>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "core/ipv4.h"

namespace bpfnet {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace

HttpResponse metrics_response(const std::string& method, const std::string& target,
                              const std::function<std::string()>& render) {
    if (method != "GET") return {405, "text/plain", "only GET\n"};
    if (target.substr(0, target.find('?')) != "/metrics")
        return {404, "text/plain", "metrics are at /metrics\n"};
    return {200, kContentType, render()};
}

// A scrape endpoint needs no concurrency: one thread accepts and answers each connection in turn
// (Beast parses; a client that stalls is cut off by socket timeouts).
struct MetricsServer::Tcp {
    net::io_context io;
    tcp::acceptor acceptor{io};
    std::function<std::string()> render;
    std::atomic<bool> stopping{false};
    std::thread thread;

    void serve() {
        while (!stopping) {
            beast::error_code ec;
            tcp::socket socket(io);
            acceptor.accept(socket, ec);
            if (ec) {
                if (stopping) return;
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
                continue;
            }
            timeval timeout{5, 0};
            ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout,
                         sizeof(timeout));
            ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &timeout,
                         sizeof(timeout));
            beast::flat_buffer buffer;
            http::request_parser<http::string_body> parser;
            parser.header_limit(16 * 1024);
            parser.body_limit(16 * 1024);
            http::read(socket, buffer, parser, ec);
            if (ec) continue;
            const auto& req = parser.get();
            HttpResponse r = metrics_response(std::string(req.method_string()),
                                              std::string(req.target()), render);
            http::response<http::string_body> res{static_cast<http::status>(r.status),
                                                  req.version()};
            res.set(http::field::content_type, r.content_type);
            res.keep_alive(false);
            res.body() = std::move(r.body);
            res.prepare_payload();
            http::write(socket, res, ec);
            socket.shutdown(tcp::socket::shutdown_both, ec);
        }
    }
};

Result<std::unique_ptr<MetricsServer>> MetricsServer::listen(const std::string& where,
                                                             unsigned mode,
                                                             std::function<std::string()> render) {
    std::unique_ptr<MetricsServer> server(new MetricsServer());
    server->where_ = where;
    if (where.rfind("unix:", 0) == 0) {
        BPFNET_ASSIGN_OR_RETURN(
            server->unix_,
            UnixHttpServer::listen(where.substr(5), mode, [render](const HttpRequest& r) {
                return metrics_response(r.method, r.target, render);
            }));
        server->unix_->start();
        return server;
    }
    const size_t colon = where.rfind(':');
    unsigned port = 0;
    auto address = Ipv4::parse(where.substr(0, colon == std::string::npos ? 0 : colon));
    if (colon == std::string::npos || !address ||
        std::sscanf(where.c_str() + colon + 1, "%u", &port) != 1 || port == 0 || port > 65535)
        return fail(ErrorKind::InvalidArgument,
                    fmt::format("invalid --metrics-listen \"{}\": ADDRESS:PORT (e.g. "
                                "127.0.0.1:9495) or unix:PATH",
                                where));
    auto tcp_server = std::make_unique<Tcp>();
    tcp_server->render = std::move(render);
    beast::error_code ec;
    const tcp::endpoint endpoint(net::ip::make_address_v4(address->str()),
                                 static_cast<uint16_t>(port));
    tcp_server->acceptor.open(endpoint.protocol(), ec);
    if (!ec) tcp_server->acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) tcp_server->acceptor.bind(endpoint, ec);
    if (!ec) tcp_server->acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec)
        return fail(ErrorKind::Conflict,
                    fmt::format("metrics: cannot listen on {}: {}", where, ec.message()));
    Tcp* raw = tcp_server.get();
    tcp_server->thread = std::thread([raw] { raw->serve(); });
    server->tcp_ = std::move(tcp_server);
    return server;
}

MetricsServer::~MetricsServer() {
    if (unix_) unix_->stop();
    if (tcp_) {
        tcp_->stopping = true;
        // Wakes the blocking accept().
        ::shutdown(tcp_->acceptor.native_handle(), SHUT_RDWR);
        if (tcp_->thread.joinable()) tcp_->thread.join();
    }
}

}  // namespace bpfnet
