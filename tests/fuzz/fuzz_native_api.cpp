// libFuzzer target: the native API's request handling (routing, JSON decoding, validation, and
// the operations behind them over a fake datapath). Input: the first line is "METHOD TARGET",
// the rest the body. Every request must get a well-formed answer; none may crash the agent.
#include <cstddef>
#include <cstdint>
#include <string>

#include "agent/native_api.h"
#include "fuzz_service.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace bpfnet;
    static NativeApi api(fuzz::service());
    const std::string input(reinterpret_cast<const char*>(data), size);
    const size_t eol = input.find('\n');
    const std::string line = input.substr(0, eol);
    HttpRequest request;
    request.method = line.substr(0, line.find(' '));
    request.target = line.find(' ') == std::string::npos ? "" : line.substr(line.find(' ') + 1);
    request.body = eol == std::string::npos ? "" : input.substr(eol + 1);
    request.peer_uid = 0;
    // Creating a sandbox makes a real network namespace (see fuzz_service.h).
    if (request.target.find("sandboxes") != std::string::npos && request.method != "GET") return 0;
    const HttpResponse response = api.handle(request);
    if (response.status < 100 || response.status > 599) __builtin_trap();
    return 0;
}
