// One HTTP request over a unix stream socket with Boost.Beast, on a private io_context: asio's
// blocking operations cannot time out, so connect, write and read run asynchronously under one
// deadline.
#include "client/http_client.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>

#include <fmt/format.h>

#include "client/socket_path.h"
#include "core/fd.h"

namespace bpfnet {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Local = net::local::stream_protocol;
using Stream = beast::basic_stream<Local>;

// Responses can list every network/endpoint; be generous but still bounded.
constexpr std::uint64_t kMaxResponseBody = 256 * 1024 * 1024;

}  // namespace

Result<HttpResponse> http_request(const std::string& socket_path, const std::string& method,
                                  const std::string& target, const std::string& body,
                                  std::chrono::milliseconds timeout) {
    if (socket_path.size() > kMaxUnixSocketPath) {
        return fail(ErrorKind::Internal,
                    fmt::format("cannot connect to {}: socket path is too long", socket_path));
    }
    net::io_context ioc{1};
    Stream stream(ioc);

    http::request<http::string_body> req;
    req.version(11);
    req.method_string(method);
    req.target(target);
    req.set(http::field::host, "localhost");
    if (!body.empty()) {
        req.set(http::field::content_type, "application/json");
        req.body() = body;
    }
    // One request per connection: tell the server so its connection thread ends right away.
    req.keep_alive(false);
    req.prepare_payload();

    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.header_limit(kHttpMaxHeaderBytes);
    parser.body_limit(kMaxResponseBody);

    enum class Stage { Connect, Write, Read };
    Stage stage = Stage::Connect;
    beast::error_code connect_ec;
    beast::error_code write_ec;
    beast::error_code read_ec;

    // The deadline covers connect, write and read together.
    if (timeout.count() > 0) stream.expires_after(timeout);
    stream.async_connect(Local::endpoint(socket_path), [&](beast::error_code ec) {
        if (ec) {
            connect_ec = ec;
            return;
        }
        set_cloexec(stream.socket().native_handle());
        stage = Stage::Write;
        http::async_write(stream, req, [&](beast::error_code wec, std::size_t) {
            // Even if sending failed (the server may reject an oversized body and close early),
            // a response may already be waiting: try to read it.
            write_ec = wec;
            if (wec == beast::error::timeout) return;
            stage = Stage::Read;
            http::async_read(stream, buffer, parser,
                             [&](beast::error_code rec, std::size_t) { read_ec = rec; });
        });
    });
    ioc.run();

    auto timed_out = [&] {
        return fmt::format("{} {} to {} timed out after {} ms", method, target, socket_path,
                           timeout.count());
    };
    if (connect_ec) {
        std::string reason = connect_ec == beast::error::timeout
                                 ? fmt::format("timed out after {} ms", timeout.count())
                                 : connect_ec.message();
        return fail(ErrorKind::Internal,
                    fmt::format("cannot connect to {}: {}", socket_path, reason));
    }
    if (stage == Stage::Write && write_ec == beast::error::timeout) {
        return fail(ErrorKind::Internal, timed_out());
    }
    if (read_ec) {
        if (read_ec == beast::error::timeout) return fail(ErrorKind::Internal, timed_out());
        if (write_ec) {
            return fail(ErrorKind::Internal, fmt::format("sending {} {} to {} failed: {}", method,
                                                         target, socket_path, write_ec.message()));
        }
        return fail(ErrorKind::Internal,
                    fmt::format("reading the response to {} {} from {} failed: {}", method, target,
                                socket_path, read_ec.message()));
    }

    auto& res = parser.get();
    HttpResponse out;
    out.status = static_cast<int>(res.result_int());
    out.content_type = std::string(res[http::field::content_type]);
    out.body = std::move(res.body());
    return out;
}

}  // namespace bpfnet
