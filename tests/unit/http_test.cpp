#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "agent/http_server.h"
#include "client/http_client.h"

namespace bpfnet {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Local = net::local::stream_protocol;
using Clock = std::chrono::steady_clock;

// Echoes the request back as a small JSON-ish text so tests can check what the server parsed.
HttpResponse echo(const HttpRequest& r) {
    HttpResponse res;
    res.body = r.method + " " + r.target + " " + r.body;
    return res;
}

class HttpTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/bpfnet-http-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        path_ = dir_ + "/api.sock";
    }
    void TearDown() override {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    std::unique_ptr<UnixHttpServer> serve(HttpHandler handler, const std::string& path = {}) {
        auto server = UnixHttpServer::listen(path.empty() ? path_ : path, 0660, std::move(handler));
        EXPECT_TRUE(server.ok()) << (server.ok() ? "" : server.error().message);
        if (!server.ok()) return nullptr;
        auto s = std::move(server).value();
        s->start();
        return s;
    }

    // A plain blocking client socket with a receive timeout so a broken server fails the test
    // instead of hanging it.
    int raw_connect() const {
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        EXPECT_GE(fd, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
        EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
            << std::strerror(errno);
        timeval tv{5, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        return fd;
    }

    static void send_all(int fd, const std::string& data) {
        size_t off = 0;
        while (off < data.size()) {
            ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
            ASSERT_GT(n, 0) << std::strerror(errno);
            off += static_cast<size_t>(n);
        }
    }

    // Reads until EOF (returns true) or error/timeout (returns false).
    static bool reads_eof(int fd, std::string* received = nullptr) {
        char buf[4096];
        for (;;) {
            ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
            if (n == 0) return true;
            if (n < 0) return errno == ECONNRESET;
            if (received) received->append(buf, static_cast<size_t>(n));
        }
    }

    std::string dir_;
    std::string path_;
};

TEST_F(HttpTest, RoundTripWithBody) {
    std::mutex mu;
    HttpRequest seen;
    auto server = serve([&](const HttpRequest& r) {
        std::lock_guard lock(mu);
        seen = r;
        HttpResponse res;
        res.status = 201;
        res.content_type = "application/vnd.docker.plugins.v1+json";
        res.body = R"({"echo":)" + r.body + "}";
        return res;
    });
    ASSERT_TRUE(server);
    EXPECT_EQ(server->path(), path_);

    auto res = http_request(path_, "POST", "/v1/networks?driver=bridge", R"({"Name":"web"})");
    ASSERT_TRUE(res.ok()) << res.error().message;
    EXPECT_EQ(res->status, 201);
    EXPECT_EQ(res->content_type, "application/vnd.docker.plugins.v1+json");
    EXPECT_EQ(res->body, R"({"echo":{"Name":"web"}})");

    std::lock_guard lock(mu);
    EXPECT_EQ(seen.method, "POST");
    EXPECT_EQ(seen.target, "/v1/networks?driver=bridge");
    EXPECT_EQ(seen.body, R"({"Name":"web"})");
    EXPECT_EQ(seen.headers["content-type"], "application/json");
    EXPECT_EQ(seen.headers["host"], "localhost");
    EXPECT_EQ(seen.headers["content-length"], "14");
    EXPECT_EQ(seen.peer_uid, ::getuid());
}

TEST_F(HttpTest, HeaderNamesAreLowerCasedAndRepeatsJoined) {
    std::mutex mu;
    std::map<std::string, std::string> headers;
    auto server = serve([&](const HttpRequest& r) {
        std::lock_guard lock(mu);
        headers = r.headers;
        return HttpResponse{};
    });
    ASSERT_TRUE(server);
    int fd = raw_connect();
    send_all(fd,
             "GET /x HTTP/1.1\r\nHost: localhost\r\nX-Mixed-CASE: Value\r\nACCEPT: a\r\n"
             "accept: b\r\nConnection: close\r\n\r\n");
    std::string reply;
    EXPECT_TRUE(reads_eof(fd, &reply));
    ::close(fd);
    EXPECT_EQ(reply.rfind("HTTP/1.1 200", 0), 0u) << reply;

    std::lock_guard lock(mu);
    for (const auto& [name, value] : headers) {
        for (char c : name) EXPECT_FALSE(c >= 'A' && c <= 'Z') << name;
    }
    EXPECT_EQ(headers["x-mixed-case"], "Value");  // values are untouched
    EXPECT_EQ(headers["accept"], "a, b");
}

TEST_F(HttpTest, GetWithoutBodyAndEmptyResponse) {
    auto server = serve([](const HttpRequest& r) {
        HttpResponse res;
        res.status = r.body.empty() ? 204 : 400;
        res.body = "ignored for 204";
        return res;
    });
    ASSERT_TRUE(server);
    auto res = http_request(path_, "DELETE", "/v1/networks/abc", "");
    ASSERT_TRUE(res.ok()) << res.error().message;
    EXPECT_EQ(res->status, 204);
    EXPECT_EQ(res->body, "");
}

TEST_F(HttpTest, LargeBodyRoundTrip) {
    auto server = serve(echo);
    ASSERT_TRUE(server);
    std::string big(3 * 1024 * 1024, 'x');
    auto res = http_request(path_, "PUT", "/big", big);
    ASSERT_TRUE(res.ok()) << res.error().message;
    EXPECT_EQ(res->body, "PUT /big " + big);
}

TEST_F(HttpTest, OversizedBodyIsRejected) {
    std::atomic<int> calls{0};
    auto server = serve([&](const HttpRequest& r) {
        ++calls;
        return echo(r);
    });
    ASSERT_TRUE(server);
    std::string huge(16 * 1024 * 1024 + 1, 'x');
    // The server answers as soon as it sees the Content-Length and closes; the client, whose
    // send fails half-way, still reads that answer.
    auto res = http_request(path_, "POST", "/huge", huge);
    ASSERT_TRUE(res.ok()) << res.error().message;
    EXPECT_EQ(res->status, 413);
    EXPECT_NE(res->body.find("request body exceeds 16777216 bytes"), std::string::npos);
    EXPECT_EQ(calls.load(), 0);
    // Still serving.
    auto ok = http_request(path_, "GET", "/after", "");
    ASSERT_TRUE(ok.ok()) << ok.error().message;
    EXPECT_EQ(ok->status, 200);
}

TEST_F(HttpTest, ManySequentialRequests) {
    auto server = serve(echo);
    ASSERT_TRUE(server);
    for (int i = 0; i < 200; ++i) {
        auto res = http_request(path_, "GET", "/n/" + std::to_string(i), "");
        ASSERT_TRUE(res.ok()) << i << ": " << res.error().message;
        ASSERT_EQ(res->body, "GET /n/" + std::to_string(i) + " ");
    }
}

TEST_F(HttpTest, ConcurrentClients) {
    std::atomic<int> in_flight{0};
    std::atomic<int> max_in_flight{0};
    auto server = serve([&](const HttpRequest& r) {
        int now = ++in_flight;
        int prev = max_in_flight.load();
        while (now > prev && !max_in_flight.compare_exchange_weak(prev, now)) {
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        --in_flight;
        return echo(r);
    });
    ASSERT_TRUE(server);
    constexpr int kClients = 20;
    constexpr int kPerClient = 10;
    std::atomic<int> good{0};
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
        clients.emplace_back([&, c] {
            for (int i = 0; i < kPerClient; ++i) {
                std::string body = std::to_string(c) + "-" + std::to_string(i);
                auto res = http_request(path_, "POST", "/c", body);
                if (res.ok() && res->status == 200 && res->body == "POST /c " + body) ++good;
            }
        });
    }
    for (auto& t : clients) t.join();
    EXPECT_EQ(good.load(), kClients * kPerClient);
    // Connections are served in parallel, not one after another.
    EXPECT_GT(max_in_flight.load(), 1);
}

TEST_F(HttpTest, KeepAliveServesSeveralRequestsOnOneConnection) {
    std::mutex mu;
    std::set<std::thread::id> threads;
    int count = 0;
    auto server = serve([&](const HttpRequest& r) {
        std::lock_guard lock(mu);
        threads.insert(std::this_thread::get_id());
        ++count;
        return echo(r);
    });
    ASSERT_TRUE(server);

    net::io_context ioc;
    Local::socket socket(ioc);
    socket.connect(Local::endpoint(path_));
    beast::flat_buffer buffer;
    for (int i = 0; i < 3; ++i) {
        http::request<http::string_body> req{http::verb::post, "/ka", 11};
        req.set(http::field::host, "localhost");
        req.body() = "n" + std::to_string(i);
        req.keep_alive(true);
        req.prepare_payload();
        http::write(socket, req);
        http::response<http::string_body> res;
        http::read(socket, buffer, res);
        EXPECT_EQ(res.result_int(), 200u);
        EXPECT_EQ(res.body(), "POST /ka n" + std::to_string(i));
        EXPECT_TRUE(res.keep_alive());
    }
    // HTTP/1.0 without keep-alive: the server answers and closes.
    http::request<http::string_body> last{http::verb::get, "/bye", 10};
    http::write(socket, last);
    http::response<http::string_body> res;
    http::read(socket, buffer, res);
    EXPECT_EQ(res.body(), "GET /bye ");
    EXPECT_FALSE(res.keep_alive());
    beast::error_code ec;
    char byte;
    socket.read_some(net::buffer(&byte, 1), ec);
    EXPECT_EQ(ec, net::error::eof);

    std::lock_guard lock(mu);
    EXPECT_EQ(count, 4);
    EXPECT_EQ(threads.size(), 1u);  // one connection, one thread
}

TEST_F(HttpTest, ExpectContinueIsAnswered) {
    auto server = serve(echo);
    ASSERT_TRUE(server);
    int fd = raw_connect();
    send_all(fd,
             "POST /e HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
             "Expect: 100-continue\r\nConnection: close\r\n\r\n");
    char buf[256];
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    ASSERT_GT(n, 0);
    EXPECT_EQ(std::string(buf, static_cast<size_t>(n)).rfind("HTTP/1.1 100 Continue", 0), 0u);
    send_all(fd, "hello");
    std::string reply;
    EXPECT_TRUE(reads_eof(fd, &reply));
    ::close(fd);
    EXPECT_NE(reply.find("200 OK"), std::string::npos) << reply;
    EXPECT_NE(reply.find("POST /e hello"), std::string::npos) << reply;
}

TEST_F(HttpTest, HandlerExceptionBecomes500AndServerKeepsServing) {
    auto server = serve([](const HttpRequest& r) -> HttpResponse {
        if (r.target == "/boom") throw std::runtime_error("kaboom \"quoted\"");
        if (r.target == "/weird") throw 42;
        return echo(r);
    });
    ASSERT_TRUE(server);
    auto res = http_request(path_, "GET", "/boom", "");
    ASSERT_TRUE(res.ok()) << res.error().message;
    EXPECT_EQ(res->status, 500);
    EXPECT_EQ(res->content_type, "application/json");
    EXPECT_EQ(res->body, R"({"message": "internal error: kaboom \"quoted\""})");

    auto weird = http_request(path_, "GET", "/weird", "");
    ASSERT_TRUE(weird.ok()) << weird.error().message;
    EXPECT_EQ(weird->status, 500);

    auto ok = http_request(path_, "GET", "/fine", "");
    ASSERT_TRUE(ok.ok()) << ok.error().message;
    EXPECT_EQ(ok->status, 200);
    EXPECT_EQ(ok->body, "GET /fine ");
}

TEST_F(HttpTest, GarbageIsDroppedAndServerSurvives) {
    std::atomic<int> calls{0};
    auto server = serve([&](const HttpRequest& r) {
        ++calls;
        return echo(r);
    });
    ASSERT_TRUE(server);
    const std::vector<std::string> garbage = {
        std::string("\x00\x01\x02\xff\xfe garbage\r\n\r\n", 17), "GET / FOO/1.1\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: banana\r\n\r\n",
        "GET / HTTP/1.1\r\n" + std::string(100000, 'A') + "\r\n\r\n",  // header too large
    };
    for (const auto& bytes : garbage) {
        int fd = raw_connect();
        send_all(fd, bytes);
        EXPECT_TRUE(reads_eof(fd)) << "server did not close the connection";
        ::close(fd);
    }
    // A client that connects and disconnects mid-request.
    int fd = raw_connect();
    send_all(fd, "POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\npartial");
    ::close(fd);

    EXPECT_EQ(calls.load(), 0);
    auto ok = http_request(path_, "GET", "/alive", "");
    ASSERT_TRUE(ok.ok()) << ok.error().message;
    EXPECT_EQ(ok->body, "GET /alive ");
}

TEST_F(HttpTest, StopReturnsPromptlyWithIdleConnections) {
    auto server = serve(echo);
    ASSERT_TRUE(server);
    // One connection that never sends anything, one idle after a keep-alive request.
    int silent = raw_connect();
    int idle = raw_connect();
    send_all(idle, "GET /k HTTP/1.1\r\nHost: localhost\r\n\r\n");
    char buf[1024];
    ASSERT_GT(::recv(idle, buf, sizeof(buf), 0), 0);

    auto start = Clock::now();
    server->stop();
    auto elapsed = Clock::now() - start;
    EXPECT_LT(elapsed, std::chrono::seconds(2));

    EXPECT_TRUE(reads_eof(silent));
    EXPECT_TRUE(reads_eof(idle));
    ::close(silent);
    ::close(idle);
    // The socket file is gone and clients get a clear error.
    EXPECT_FALSE(std::filesystem::exists(path_));
    auto res = http_request(path_, "GET", "/", "");
    EXPECT_FALSE(res.ok());
    server->stop();  // idempotent
}

TEST_F(HttpTest, DestructorStopsServer) {
    auto server = serve(echo);
    ASSERT_TRUE(server);
    int idle = raw_connect();
    auto start = Clock::now();
    server.reset();
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
    EXPECT_TRUE(reads_eof(idle));
    ::close(idle);
}

TEST_F(HttpTest, ServerNeverStartedCanBeDestroyed) {
    auto server = UnixHttpServer::listen(path_, 0660, echo);
    ASSERT_TRUE(server.ok()) << server.error().message;
    EXPECT_TRUE(std::filesystem::exists(path_));
    server.value().reset();
    EXPECT_FALSE(std::filesystem::exists(path_));
}

TEST_F(HttpTest, ListenTwiceOnSamePathConflicts) {
    auto first = serve(echo);
    ASSERT_TRUE(first);
    auto second = UnixHttpServer::listen(path_, 0660, echo);
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.error().kind, ErrorKind::Conflict);
    EXPECT_EQ(second.error().message, "another agent is already listening on " + path_);
    // The first server is unaffected.
    auto res = http_request(path_, "GET", "/still", "");
    ASSERT_TRUE(res.ok()) << res.error().message;
    EXPECT_EQ(res->body, "GET /still ");
}

TEST_F(HttpTest, ListeningButNotStartedAlsoConflicts) {
    auto first = UnixHttpServer::listen(path_, 0660, echo);
    ASSERT_TRUE(first.ok());
    auto second = UnixHttpServer::listen(path_, 0660, echo);
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.error().kind, ErrorKind::Conflict);
}

TEST_F(HttpTest, StaleSocketFileIsReplaced) {
    // Leave behind a socket file nobody listens on, as a crashed agent would.
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ::close(fd);
    struct stat st {};
    ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
    ASSERT_TRUE(S_ISSOCK(st.st_mode));

    auto server = serve(echo);
    ASSERT_TRUE(server);
    auto res = http_request(path_, "GET", "/fresh", "");
    ASSERT_TRUE(res.ok()) << res.error().message;
    EXPECT_EQ(res->body, "GET /fresh ");
}

TEST_F(HttpTest, RegularFileAtPathIsNotReplaced) {
    { std::ofstream(path_) << "precious"; }
    auto server = UnixHttpServer::listen(path_, 0660, echo);
    ASSERT_FALSE(server.ok());
    EXPECT_NE(server.error().message.find("not a socket"), std::string::npos)
        << server.error().message;
    std::ifstream in(path_);
    std::string content;
    in >> content;
    EXPECT_EQ(content, "precious");
}

TEST_F(HttpTest, SocketModeIsApplied) {
    auto server = serve(echo);
    ASSERT_TRUE(server);
    struct stat st {};
    ASSERT_EQ(::stat(path_.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0660u);
}

TEST_F(HttpTest, ParentDirectoryIsCreated) {
    std::string nested = dir_ + "/run/bpfnet/api.sock";
    auto server = serve(echo, nested);
    ASSERT_TRUE(server);
    auto res = http_request(nested, "GET", "/nested", "");
    ASSERT_TRUE(res.ok()) << res.error().message;
    EXPECT_EQ(res->body, "GET /nested ");
}

TEST_F(HttpTest, OverlongPathIsRejected) {
    std::string longpath = dir_ + "/" + std::string(120, 's') + ".sock";
    auto server = UnixHttpServer::listen(longpath, 0660, echo);
    ASSERT_FALSE(server.ok());
    EXPECT_EQ(server.error().kind, ErrorKind::InvalidArgument);
    auto res = http_request(longpath, "GET", "/", "");
    ASSERT_FALSE(res.ok());
    EXPECT_EQ(res.error().kind, ErrorKind::Internal);
}

TEST_F(HttpTest, ClientAgainstMissingSocketGivesClearError) {
    auto res = http_request(path_, "GET", "/v1/networks", "");
    ASSERT_FALSE(res.ok());
    EXPECT_EQ(res.error().kind, ErrorKind::Internal);
    EXPECT_EQ(res.error().message.rfind("cannot connect to " + path_ + ": ", 0), 0u)
        << res.error().message;
    EXPECT_NE(res.error().message.find("No such file or directory"), std::string::npos)
        << res.error().message;
}

TEST_F(HttpTest, ClientAgainstDeadSocketGivesClearError) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ::close(fd);
    auto res = http_request(path_, "GET", "/", "");
    ASSERT_FALSE(res.ok());
    EXPECT_EQ(res.error().kind, ErrorKind::Internal);
    EXPECT_EQ(res.error().message, "cannot connect to " + path_ + ": Connection refused");
}

TEST_F(HttpTest, ClientTimeoutIsHonoured) {
    auto server = serve([](const HttpRequest& r) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1500));
        return echo(r);
    });
    ASSERT_TRUE(server);
    auto start = Clock::now();
    auto res = http_request(path_, "GET", "/slow", "", std::chrono::milliseconds(200));
    auto elapsed = Clock::now() - start;
    ASSERT_FALSE(res.ok());
    EXPECT_EQ(res.error().kind, ErrorKind::Internal);
    EXPECT_NE(res.error().message.find("timed out"), std::string::npos) << res.error().message;
    EXPECT_LT(elapsed, std::chrono::milliseconds(1200));
}

}  // namespace
}  // namespace bpfnet
