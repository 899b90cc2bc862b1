// libFuzzer target: Docker's plugin protocol as dockerd speaks it (NetworkDriver and IpamDriver
// calls, JSON bodies), over a fake datapath. Input: the first byte picks the call, the rest is its
// body. Malformed bodies must get a 4xx or an {"Err"}/{"Error"} answer, never a crash.
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>

#include "agent/docker_plugin.h"
#include "fuzz_service.h"

namespace {
constexpr const char* kCalls[] = {
    "/Plugin.Activate",
    "/NetworkDriver.GetCapabilities",
    "/NetworkDriver.CreateNetwork",
    "/NetworkDriver.DeleteNetwork",
    "/NetworkDriver.CreateEndpoint",
    "/NetworkDriver.EndpointOperInfo",
    "/NetworkDriver.DeleteEndpoint",
    "/NetworkDriver.Join",
    "/NetworkDriver.Leave",
    "/NetworkDriver.ProgramExternalConnectivity",
    "/NetworkDriver.RevokeExternalConnectivity",
    "/IpamDriver.GetCapabilities",
    "/IpamDriver.GetDefaultAddressSpaces",
    "/IpamDriver.RequestPool",
    "/IpamDriver.ReleasePool",
    "/IpamDriver.RequestAddress",
    "/IpamDriver.ReleaseAddress",
    "/NoSuch.Call",
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace bpfnet;
    static DockerPluginApi api(bpfnet::fuzz::service());
    if (size == 0) return 0;
    HttpRequest request;
    request.method = "POST";
    request.target = kCalls[data[0] % std::size(kCalls)];
    request.body.assign(reinterpret_cast<const char*>(data + 1), size - 1);
    request.peer_uid = 0;
    const HttpResponse response = api.handle(request);
    if (response.status < 100 || response.status > 599) __builtin_trap();
    return 0;
}
