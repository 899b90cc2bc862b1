// The agent's request handlers over a real NetworkService and SQLite store in a private
// directory, with a FakeDatapath in place of the kernel, for the API fuzz targets. Made once per
// fuzzing process; requests that would make real network namespaces (sandbox creation) are not
// fed to it: they need root and leave kernel state behind, which a fuzzer must not.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "../unit/fake_datapath.h"
#include "agent/service.h"
#include "datapath/probe.h"
#include "store/store.h"

namespace bpfnet::fuzz {

inline NetworkService& service() {
    static std::unique_ptr<NetworkService> instance = [] {
        spdlog::set_level(spdlog::level::off);
        char tmpl[] = "/tmp/bpfnet-fuzz-XXXXXX";
        const std::string dir = mkdtemp(tmpl);
        ServiceConfig config;
        config.state_dir = dir + "/state";
        config.run_dir = dir + "/run";
        config.bpffs_root = dir + "/bpffs";
        config.netns_dir = dir + "/netns";
        std::filesystem::create_directories(config.state_dir);
        auto store = open_sqlite_store(config.state_dir + "/bpfnet.db");
        if (!store) abort();
        return std::make_unique<NetworkService>(
            config, "fuzz", std::move(*store),
            std::make_unique<DatapathGraph>(std::make_unique<FakeDatapath>(), nullptr,
                                            "not under test", nullptr),
            ProbeResult{});
    }();
    return *instance;
}

}  // namespace bpfnet::fuzz
