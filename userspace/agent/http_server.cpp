// The unix-socket HTTP/1.1 server with Boost.Beast.
//
// Threading model: the acceptor runs on its own io_context and thread. Every accepted connection
// gets a private io_context driven by a dedicated thread, so a slow handler only ever blocks its
// own client. The connection threads still use asynchronous operations on their private contexts
// because asio's blocking reads cannot time out (the socket is polled without a deadline, whatever
// SO_RCVTIMEO says), and because io_context::stop() lets stop() end an idle connection from any
// thread.
#include "agent/http_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <list>
#include <mutex>
#include <optional>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "client/socket_path.h"
#include "core/fd.h"

namespace bpfnet {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Local = net::local::stream_protocol;
using Stream = beast::basic_stream<Local>;

// Docker sends small JSON documents; 16 MiB is far above any legitimate request and bounds the
// memory one client can make us allocate.
constexpr std::uint64_t kMaxRequestBody = 16 * 1024 * 1024;
// A client that neither sends a request nor closes its keep-alive connection releases its thread
// after this long.
constexpr std::chrono::seconds kIdleTimeout{60};
// A client that stops reading its response must not pin a thread either.
constexpr std::chrono::seconds kWriteTimeout{60};
// Back-off after a failed accept (EMFILE, ENFILE...) so the acceptor does not spin.
constexpr std::chrono::milliseconds kAcceptRetryDelay{100};

std::string json_message(std::string_view text) {
    std::string out = "{\"message\": \"";
    for (char ch : text) {
        auto c = static_cast<unsigned char>(ch);
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (c < 0x20) {
                    out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
                } else {
                    out += ch;
                }
        }
    }
    out += "\"}";
    return out;
}

std::string lower(beast::string_view text) {
    std::string out(text.data(), text.size());
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

// Who is on the other end; nobody (-1) if the kernel will not say.
ucred peer_cred_of(int fd) {
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        spdlog::warn("http: SO_PEERCRED failed: {}", std::strerror(errno));
        cred.uid = static_cast<uid_t>(-1);
        cred.gid = static_cast<gid_t>(-1);
    }
    return cred;
}

// One client connection. Owned by the completion handlers pending on its io_context, so it lives
// exactly as long as there is I/O outstanding; all its methods run on the connection's thread.
class Session : public std::enable_shared_from_this<Session> {
  public:
    Session(Local::socket socket, ucred peer, std::shared_ptr<const HttpHandler> handler)
        : stream_(std::move(socket)), peer_(peer), handler_(std::move(handler)) {}

    void start() { read_header(); }

  private:
    void read_header() {
        parser_.emplace();
        parser_->header_limit(kHttpMaxHeaderBytes);
        parser_->body_limit(kMaxRequestBody);
        stream_.expires_after(kIdleTimeout);
        http::async_read_header(stream_, buffer_, *parser_,
                                beast::bind_front_handler(&Session::on_header, shared_from_this()));
    }

    void on_header(beast::error_code ec, std::size_t) {
        if (ec) return on_read_error(ec);
        auto& req = parser_->get();
        // curl (and other clients) send "Expect: 100-continue" for larger bodies and wait for the
        // go-ahead before sending them; Beast leaves answering to us.
        if (beast::iequals(req[http::field::expect], "100-continue")) {
            continue_.emplace(http::status::continue_, req.version());
            stream_.expires_after(kWriteTimeout);
            http::async_write(stream_, *continue_,
                              beast::bind_front_handler(&Session::on_continue, shared_from_this()));
            return;
        }
        read_body();
    }

    void on_continue(beast::error_code ec, std::size_t) {
        if (ec) {
            spdlog::debug("http: writing 100 Continue failed: {}", ec.message());
            return;
        }
        read_body();
    }

    void read_body() {
        stream_.expires_after(kIdleTimeout);
        http::async_read(stream_, buffer_, *parser_,
                         beast::bind_front_handler(&Session::on_read, shared_from_this()));
    }

    void on_read(beast::error_code ec, std::size_t) {
        if (ec) return on_read_error(ec);
        handle(parser_->release());
    }

    void on_read_error(beast::error_code ec) {
        if (ec == http::error::end_of_stream) {
            // The client closed its keep-alive connection between requests: the normal way out.
            beast::error_code ignored;
            stream_.socket().shutdown(Local::socket::shutdown_send, ignored);
            return;
        }
        if (ec == http::error::body_limit) {
            spdlog::debug("http: request body over {} bytes, rejecting", kMaxRequestBody);
            unsigned version = parser_->get().version();
            respond(HttpResponse{413, "application/json",
                                 json_message(fmt::format("request body exceeds {} bytes",
                                                          kMaxRequestBody))},
                    version, false);
            return;
        }
        if (ec == beast::error::timeout) {
            spdlog::debug("http: closing idle connection");
        } else if (ec != net::error::operation_aborted) {
            // Malformed HTTP or a broken connection: there is no sensible reply, just drop it.
            spdlog::debug("http: closing connection after read error: {}", ec.message());
        }
        // Returning without new I/O destroys the session, which closes the socket.
    }

    void handle(http::request<http::string_body> req) {
        HttpRequest request;
        request.method = std::string(req.method_string());
        request.target = std::string(req.target());
        for (const auto& field : req) {
            auto name = lower(field.name_string());
            auto [it, inserted] = request.headers.emplace(name, std::string(field.value()));
            // Repeated headers are equivalent to one comma-separated header (RFC 9110 5.3).
            if (!inserted) it->second += ", " + std::string(field.value());
        }
        request.body = std::move(req.body());
        request.peer_uid = peer_.uid;
        request.peer_gid = peer_.gid;

        HttpResponse response;
        try {
            response = (*handler_)(request);
        } catch (const std::exception& e) {
            spdlog::error("http: handler for {} {} threw: {}", request.method, request.target,
                          e.what());
            response = HttpResponse{500, "application/json",
                                    json_message(std::string("internal error: ") + e.what())};
        } catch (...) {
            spdlog::error("http: handler for {} {} threw a non-standard exception", request.method,
                          request.target);
            response = HttpResponse{500, "application/json",
                                    json_message("internal error: unknown exception")};
        }
        respond(std::move(response), req.version(), req.keep_alive());
    }

    void respond(HttpResponse out, unsigned version, bool keep_alive) {
        if (out.status < 200 || out.status > 599) {
            spdlog::error("http: handler returned invalid status {}", out.status);
            out = HttpResponse{500, "application/json",
                               json_message(fmt::format("internal error: handler returned "
                                                        "invalid HTTP status {}",
                                                        out.status))};
        }
        response_ = {};
        response_.version(version);
        response_.result(static_cast<unsigned>(out.status));
        if (out.status == 204 || out.status == 304) {
            // These responses carry no body and must not announce one (Beast would throw).
            response_.body().clear();
        } else {
            if (!out.content_type.empty())
                response_.set(http::field::content_type, out.content_type);
            response_.body() = std::move(out.body);
            response_.prepare_payload();
        }
        response_.keep_alive(keep_alive);
        close_after_write_ = response_.need_eof();
        stream_.expires_after(kWriteTimeout);
        http::async_write(stream_, response_,
                          beast::bind_front_handler(&Session::on_write, shared_from_this()));
    }

    void on_write(beast::error_code ec, std::size_t) {
        if (ec) {
            spdlog::debug("http: writing response failed: {}", ec.message());
            return;
        }
        if (close_after_write_) {
            beast::error_code ignored;
            stream_.socket().shutdown(Local::socket::shutdown_send, ignored);
            return;
        }
        read_header();
    }

    Stream stream_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    std::optional<http::response<http::empty_body>> continue_;
    http::response<http::string_body> response_;
    bool close_after_write_ = false;
    ucred peer_;
    std::shared_ptr<const HttpHandler> handler_;
};

// A connection's private event loop and the thread running it.
struct Connection {
    net::io_context ioc{1};
    std::thread thread;
    std::atomic<bool> done{false};
};

// Decides what to do about an existing file at the socket path before binding.
Status clear_socket_path(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) return {};
        return fail(ErrorKind::Internal,
                    fmt::format("cannot inspect {}: {}", path, std::strerror(errno)));
    }
    if (!S_ISSOCK(st.st_mode)) {
        // Never delete something that is not ours to delete.
        return fail(ErrorKind::Conflict,
                    fmt::format("{} exists and is not a socket; refusing to replace it", path));
    }
    // A socket file may belong to a running agent: binding over it would silently steal its
    // clients. Only a refused connection proves nobody is listening.
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return fail(ErrorKind::Internal, fmt::format("socket(AF_UNIX): {}", std::strerror(errno)));
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
    int err = errno;
    ::close(fd);
    // EAGAIN on a non-blocking unix connect means the listener's backlog is full: it is alive.
    if (rc == 0 || err == EAGAIN) {
        return fail(ErrorKind::Conflict,
                    fmt::format("another agent is already listening on {}", path));
    }
    if (err == ENOENT) return {};  // removed meanwhile
    if (err != ECONNREFUSED) {
        return fail(ErrorKind::Internal,
                    fmt::format("cannot probe existing socket {}: {}", path, std::strerror(err)));
    }
    spdlog::info("removing stale socket {}", path);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        return fail(ErrorKind::Internal,
                    fmt::format("cannot remove stale socket {}: {}", path, std::strerror(errno)));
    }
    return {};
}

}  // namespace

struct UnixHttpServer::Impl {
    explicit Impl(HttpHandler h) : handler(std::make_shared<const HttpHandler>(std::move(h))) {}

    void do_accept() {
        auto conn = std::make_shared<Connection>();
        auto socket = std::make_shared<Local::socket>(conn->ioc);
        acceptor.async_accept(*socket, [this, conn, socket](beast::error_code ec) {
            on_accept(ec, conn, std::move(*socket));
        });
    }

    void on_accept(beast::error_code ec, const std::shared_ptr<Connection>& conn,
                   Local::socket socket) {
        if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
        reap();
        if (ec) {
            spdlog::warn("http: accept on {} failed: {}", path, ec.message());
            retry_timer.expires_after(kAcceptRetryDelay);
            retry_timer.async_wait([this](beast::error_code wait_ec) {
                if (!wait_ec) do_accept();
            });
            return;
        }
        set_cloexec(socket.native_handle());
        const ucred peer = peer_cred_of(socket.native_handle());
        auto session = std::make_shared<Session>(std::move(socket), peer, handler);
        // Start the session from its own thread so that all of its code runs there.
        net::post(conn->ioc, [session] { session->start(); });
        try {
            conn->thread = std::thread([conn] {
                try {
                    conn->ioc.run();
                } catch (const std::exception& e) {
                    spdlog::error("http: connection thread failed: {}", e.what());
                }
                conn->done = true;
            });
            std::lock_guard lock(mu);
            connections.push_back(conn);
        } catch (const std::system_error& e) {
            // Out of threads: drop this client (destroying conn closes its socket), keep serving.
            spdlog::error("http: cannot start a connection thread: {}", e.what());
        }
        do_accept();
    }

    // Joins the threads of connections that have finished, so an agent serving many short
    // requests does not accumulate zombie threads.
    void reap() {
        std::lock_guard lock(mu);
        for (auto it = connections.begin(); it != connections.end();) {
            if ((*it)->done) {
                (*it)->thread.join();
                it = connections.erase(it);
            } else {
                ++it;
            }
        }
    }

    std::string path;
    std::shared_ptr<const HttpHandler> handler;
    net::io_context accept_ioc{1};
    Local::acceptor acceptor{accept_ioc};
    net::steady_timer retry_timer{accept_ioc};
    std::thread accept_thread;
    // Identity of the socket file we bound, so stop() only removes our own file.
    dev_t socket_dev = 0;
    ino_t socket_ino = 0;

    std::mutex lifecycle_mu;  // serialises start()/stop()
    bool started = false;
    bool stopped = false;

    std::mutex mu;  // guards connections
    std::list<std::shared_ptr<Connection>> connections;
};

Result<std::unique_ptr<UnixHttpServer>> UnixHttpServer::listen(const std::string& path,
                                                               unsigned mode, HttpHandler handler) {
    if (path.empty()) return fail(ErrorKind::InvalidArgument, "socket path is empty");
    if (path.size() > kMaxUnixSocketPath) {
        return fail(
            ErrorKind::InvalidArgument,
            fmt::format("socket path {} is too long (at most {} bytes)", path, kMaxUnixSocketPath));
    }
    if (!handler) return fail(ErrorKind::InvalidArgument, "no HTTP handler given");

    auto parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) {
        std::error_code fs_ec;
        std::filesystem::create_directories(parent, fs_ec);
        if (fs_ec) {
            return fail(ErrorKind::Internal, fmt::format("cannot create directory {}: {}",
                                                         parent.string(), fs_ec.message()));
        }
    }
    BPFNET_TRY(clear_socket_path(path));

    auto impl = std::make_unique<Impl>(std::move(handler));
    impl->path = path;
    beast::error_code ec;
    impl->acceptor.open(Local(), ec);
    if (ec) {
        return fail(ErrorKind::Internal, fmt::format("cannot create socket: {}", ec.message()));
    }
    set_cloexec(impl->acceptor.native_handle());
    impl->acceptor.bind(Local::endpoint(path), ec);
    if (ec) {
        // Lost a race with another process binding the same path after our probe.
        auto kind = ec == net::error::address_in_use ? ErrorKind::Conflict : ErrorKind::Internal;
        return fail(kind, fmt::format("cannot bind {}: {}", path, ec.message()));
    }
    // chmod before listen(): until then nobody can connect, so no client ever sees the socket
    // with the umask-derived permissions.
    auto cleanup = [&](std::string message) {
        beast::error_code ignored;
        impl->acceptor.close(ignored);
        ::unlink(path.c_str());
        return fail(ErrorKind::Internal, std::move(message));
    };
    if (::chmod(path.c_str(), static_cast<mode_t>(mode)) != 0) {
        return cleanup(
            fmt::format("cannot chmod {} to {:o}: {}", path, mode, std::strerror(errno)));
    }
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        impl->socket_dev = st.st_dev;
        impl->socket_ino = st.st_ino;
    }
    impl->acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec) return cleanup(fmt::format("cannot listen on {}: {}", path, ec.message()));
    return std::unique_ptr<UnixHttpServer>(new UnixHttpServer(path, std::move(impl)));
}

UnixHttpServer::UnixHttpServer(std::string path, std::unique_ptr<Impl> impl)
    : path_(std::move(path)), impl_(std::move(impl)) {}

UnixHttpServer::~UnixHttpServer() {
    stop();
}

void UnixHttpServer::start() {
    std::lock_guard lock(impl_->lifecycle_mu);
    if (impl_->started || impl_->stopped) return;
    impl_->started = true;
    Impl* impl = impl_.get();
    net::post(impl->accept_ioc, [impl] { impl->do_accept(); });
    impl->accept_thread = std::thread([impl] {
        try {
            impl->accept_ioc.run();
        } catch (const std::exception& e) {
            spdlog::error("http: acceptor thread for {} failed: {}", impl->path, e.what());
        }
    });
}

void UnixHttpServer::stop() {
    std::lock_guard lock(impl_->lifecycle_mu);
    if (impl_->stopped) return;
    impl_->stopped = true;

    // Stop accepting first so no connection appears while we tear the others down.
    impl_->accept_ioc.stop();
    if (impl_->accept_thread.joinable()) impl_->accept_thread.join();
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) &&
        st.st_dev == impl_->socket_dev && st.st_ino == impl_->socket_ino) {
        ::unlink(path_.c_str());
    }

    std::list<std::shared_ptr<Connection>> connections;
    {
        std::lock_guard conn_lock(impl_->mu);
        connections.swap(impl_->connections);
    }
    // Stopping a connection's io_context makes its thread return once the current handler (if
    // any) finishes; destroying the context then destroys the session and closes the socket.
    for (auto& conn : connections) conn->ioc.stop();
    for (auto& conn : connections) {
        if (conn->thread.get_id() == std::this_thread::get_id()) {
            // stop() called from inside a handler: joining ourselves would deadlock. The thread
            // keeps its Connection alive and exits as soon as the handler returns.
            conn->thread.detach();
        } else if (conn->thread.joinable()) {
            conn->thread.join();
        }
    }
}

}  // namespace bpfnet
