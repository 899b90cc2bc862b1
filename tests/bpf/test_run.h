// One BPF_PROG_TEST_RUN of a frame, for the BPF unit tests. TC programs get an skb context on
// `ifindex` (1, loopback, unless a test names another existing device: the kernel builds the skb
// there); XDP programs get none.
#pragma once

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <cstdint>
#include <vector>

namespace bpfnet::testing {

struct RunOutput {
    int err = 0;
    uint32_t retval = 0;
    std::vector<uint8_t> data;
};

inline RunOutput run_test(int prog_fd, const std::vector<uint8_t>& in, bool skb_ctx = true,
                          uint32_t ifindex = 1) {
    RunOutput out;
    out.data.resize(in.size() + 256);
    struct __sk_buff ctx {};
    ctx.ifindex = ifindex;
    LIBBPF_OPTS(bpf_test_run_opts, opts);
    opts.data_in = in.data();
    opts.data_size_in = static_cast<__u32>(in.size());
    opts.data_out = out.data.data();
    opts.data_size_out = static_cast<__u32>(out.data.size());
    if (skb_ctx) {
        opts.ctx_in = &ctx;
        opts.ctx_size_in = sizeof(ctx);
    }
    out.err = bpf_prog_test_run_opts(prog_fd, &opts);
    out.retval = opts.retval;
    out.data.resize(out.err == 0 ? opts.data_size_out : 0);
    return out;
}

}  // namespace bpfnet::testing
