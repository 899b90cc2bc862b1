// RAII ownership of a bpftool-generated skeleton (bpf/NAME.skel.h). The generated C API hands out a
// raw pointer that must be destroyed exactly once, reports errors through errno or negative return
// codes, and lets rodata knobs be written only between open and load. BpfSkeleton<T> owns the
// pointer (move-only, destroyed in the destructor), turns failures into Status with libbpf's error
// text, and enforces the open -> set knobs -> load order.
//
//   BpfSkeleton<pipeline> skel;
//   BPFNET_TRY(skel.open());
//   skel->rodata->pipeline_verdict = TC_ACT_SHOT;  // knobs: after open, before load
//   BPFNET_TRY(skel.load());
//   int fd = bpf_program__fd(skel->progs.bpfnet_pipeline);
//
// T is the skeleton struct; bpftool (>= 7.0) gives it static C++ members open/load/destroy that
// forward to NAME__open_opts/NAME__load/NAME__destroy, which is all this template relies on.
#pragma once

#include <bpf/libbpf.h>

#include <cerrno>
#include <string>
#include <utility>

#include "core/result.h"
#include "datapath/libbpf_log.h"

namespace bpfnet {

template <typename T>
class BpfSkeleton {
  public:
    BpfSkeleton() = default;
    ~BpfSkeleton() { reset(); }

    BpfSkeleton(const BpfSkeleton&) = delete;
    BpfSkeleton& operator=(const BpfSkeleton&) = delete;
    BpfSkeleton(BpfSkeleton&& other) noexcept
        : skel_(std::exchange(other.skel_, nullptr)),
          loaded_(std::exchange(other.loaded_, false)) {}
    BpfSkeleton& operator=(BpfSkeleton&& other) noexcept {
        if (this != &other) {
            reset();
            skel_ = std::exchange(other.skel_, nullptr);
            loaded_ = std::exchange(other.loaded_, false);
        }
        return *this;
    }

    // Parses the embedded object and maps its rodata for writing. Touches no kernel state, so it
    // works without privileges. `opts` can set pin_root_path, kernel BTF, etc.
    Status open(const struct bpf_object_open_opts* opts = nullptr) {
        if (skel_) return fail(ErrorKind::InvalidArgument, "BPF skeleton is already open");
        route_libbpf_log_to_spdlog();
        errno = 0;
        skel_ = T::open(opts);
        // The generated open() reports through errno and may leave it 0 on odd paths.
        if (!skel_) return fail(libbpf_error("opening BPF skeleton", errno ? errno : EINVAL));
        return {};
    }

    // Creates the maps (or reuses pinned ones) and loads the programs through the verifier. On
    // failure the verifier's log has gone to spdlog (warn); libbpf allows one load attempt per
    // object, so the only thing left to do with a failed skeleton is reset() and open again.
    Status load() {
        if (!skel_)
            return fail(ErrorKind::InvalidArgument, "BPF skeleton must be opened before load");
        if (loaded_)
            return fail(ErrorKind::InvalidArgument,
                        "BPF skeleton '" + name() + "' is already loaded");
        if (int err = T::load(skel_); err != 0) {
            Error error = libbpf_error("loading BPF skeleton '" + name() + "'", err);
            if (err == -EACCES || err == -EINVAL)
                error.message += " (the verifier log is in the libbpf log)";
            return fail(std::move(error));
        }
        loaded_ = true;
        return {};
    }

    Status open_and_load(const struct bpf_object_open_opts* opts = nullptr) {
        BPFNET_TRY(open(opts));
        return load();
    }

    // Destroys the skeleton: detaches its links, closes maps and programs (pinned ones live on).
    void reset() {
        if (skel_) T::destroy(skel_);
        skel_ = nullptr;
        loaded_ = false;
    }

    bool is_open() const { return skel_ != nullptr; }
    bool is_loaded() const { return loaded_; }

    // The object's name as libbpf knows it (bpftool's `name NAME`); empty before open().
    std::string name() const {
        const char* n = skel_ && skel_->obj ? bpf_object__name(skel_->obj) : nullptr;
        return n ? n : "";
    }

    T* get() const { return skel_; }
    T* operator->() const { return skel_; }

  private:
    T* skel_ = nullptr;
    bool loaded_ = false;
};

}  // namespace bpfnet
