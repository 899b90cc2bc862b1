#include "kernel/netns.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <mutex>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "kernel/netlink.h"

namespace bpfnet::kernel {

namespace {

// The calling thread's own namespace; /proc/self/ns/net would be the main thread's, which is not
// necessarily the same once threads switch.
constexpr const char* kThreadNetns = "/proc/thread-self/ns/net";

std::string errno_text(int err) {
    return std::error_code(err, std::generic_category()).message();
}

Failure sys_failure(std::string_view what, int err, ErrorKind kind = ErrorKind::Internal) {
    return fail(kind, fmt::format("{}: {}", what, errno_text(err)));
}

// Serialises the "make the directory a shared mount point" step: two concurrent first creations
// would otherwise both find it unmounted and stack two bind mounts on it.
std::mutex g_dir_mutex;

// What `ip netns add` does to NETNS_RUN_DIR: the directory must be a mount point with shared
// propagation, so that unmounting a namespace file here also unmounts it in mount namespaces that
// copied it (containers started meanwhile); otherwise those copies would keep the namespace alive.
Status prepare_netns_dir(const std::string& dir) {
    std::lock_guard lock(g_dir_mutex);
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);  // 0777 & ~umask, like mkdir -p
    if (ec) {
        return fail(ErrorKind::Internal,
                    fmt::format("create netns directory {}: {}", dir, ec.message()));
    }
    bool bind_mounted = false;
    while (mount("", dir.c_str(), "none", MS_SHARED | MS_REC, nullptr) != 0) {
        // EINVAL: not a mount point yet. Make it one by bind-mounting it onto itself, once.
        if (errno != EINVAL || bind_mounted) {
            return sys_failure(fmt::format("make {} a shared mount", dir), errno);
        }
        if (mount(dir.c_str(), dir.c_str(), "none", MS_BIND | MS_REC, nullptr) != 0) {
            return sys_failure(fmt::format("bind mount {} onto itself", dir), errno);
        }
        bind_mounted = true;
    }
    return {};
}

bool valid_netns_name(const std::string& name) {
    return !name.empty() && name.size() <= NAME_MAX && name != "." && name != ".." &&
           name.find('/') == std::string::npos;
}

// Runs on a short-lived thread, so that only that thread ever changes namespace: unshare() gives
// it a fresh network namespace, which the bind mount keeps alive after the thread exits.
Status populate_netns(const std::string& path) {
    if (unshare(CLONE_NEWNET) != 0) {
        return sys_failure(fmt::format("create network namespace {}", path), errno);
    }
    if (mount(kThreadNetns, path.c_str(), "none", MS_BIND, nullptr) != 0) {
        return sys_failure(fmt::format("bind mount network namespace onto {}", path), errno);
    }
    // A new namespace has only loopback, and it starts down; nearly everything (127.0.0.1, DNS
    // proxies in the sandbox) expects it up. This thread is already inside, so no switch needed.
    BPFNET_ASSIGN_OR_RETURN(NlSocket sock, NlSocket::open());
    return set_link_up(sock, "lo");
}

// Removes a namespace file, also if it was bind-mounted more than once.
Status remove_netns_file(const std::string& path) {
    int err = 0;
    for (int i = 0; i < 16 && err == 0; ++i) {
        if (umount2(path.c_str(), MNT_DETACH) != 0) err = errno;
    }
    // EINVAL: not (or no longer) a mount point; ENOENT: nothing there at all.
    if (err == 0) {
        return fail(ErrorKind::Internal,
                    fmt::format("unmount network namespace {}: still mounted", path));
    }
    if (err != EINVAL && err != ENOENT) {
        return sys_failure(fmt::format("unmount network namespace {}", path), err);
    }
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
        return sys_failure(fmt::format("remove network namespace {}", path), errno);
    }
    return {};
}

}  // namespace

// -------------------------------------------------------------------------------------------------
// NetnsFd
// -------------------------------------------------------------------------------------------------

Result<NetnsFd> NetnsFd::open(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        return sys_failure(fmt::format("open network namespace {}", path), err,
                           err == ENOENT ? ErrorKind::NotFound : ErrorKind::Internal);
    }
    return NetnsFd(fd);
}

// -------------------------------------------------------------------------------------------------
// Named namespaces
// -------------------------------------------------------------------------------------------------

namespace {

// Creates the empty file <dir>/<name> a namespace is bind-mounted onto. O_EXCL makes the existence
// check and the claim on the name one atomic step.
Result<std::string> claim_netns_file(const std::string& name, const std::string& dir) {
    if (!valid_netns_name(name)) {
        return fail(ErrorKind::InvalidArgument,
                    fmt::format("invalid network namespace name \"{}\"", name));
    }
    BPFNET_TRY(prepare_netns_dir(dir));
    std::string path = dir + "/" + name;
    Fd claimed(::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0));
    if (claimed.get() < 0) {
        int err = errno;
        if (err == EEXIST) {
            return fail(ErrorKind::Conflict,
                        fmt::format("network namespace {} already exists", path));
        }
        return sys_failure(fmt::format("create network namespace file {}", path), err);
    }
    return path;
}

Result<std::string> finish_or_undo(const std::string& path, Status made) {
    if (!made) {
        Status undone = remove_netns_file(path);
        if (!undone) spdlog::warn("cleanup of {} failed: {}", path, undone.error().message);
        return fail(made.error());
    }
    return path;
}

}  // namespace

Result<std::string> create_named_netns(const std::string& name, const std::string& dir) {
    BPFNET_ASSIGN_OR_RETURN(std::string path, claim_netns_file(name, dir));
    Status populated;
    try {
        std::thread worker([&] { populated = populate_netns(path); });
        worker.join();
    } catch (const std::system_error& e) {  // no thread could be started
        populated = fail(ErrorKind::Internal,
                         fmt::format("create network namespace {}: {}", path, e.what()));
    }
    return finish_or_undo(path, populated);
}

Result<std::string> bind_host_netns(const std::string& name, const std::string& dir) {
    BPFNET_ASSIGN_OR_RETURN(std::string path, claim_netns_file(name, dir));
    // /proc/self is the thread group leader: the namespace the agent runs in, whatever namespace
    // the calling thread may have switched to.
    Status bound;
    if (mount("/proc/self/ns/net", path.c_str(), "none", MS_BIND, nullptr) != 0)
        bound = sys_failure(fmt::format("bind mount the host's network namespace onto {}", path),
                            errno);
    return finish_or_undo(path, bound);
}

Status delete_named_netns(const std::string& path) {
    return remove_netns_file(path);
}

bool netns_exists(const std::string& path) {
    // An nsfs file system is only ever seen through a namespace bind mount (or /proc/*/ns), so
    // this tells a live namespace from the empty placeholder file left by a failed mount.
    struct statfs fs {};
    if (statfs(path.c_str(), &fs) != 0 || fs.f_type != NSFS_MAGIC) return false;
    // Reject other namespace types bind-mounted at the same place.
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return false;
    int type = ioctl(fd.get(), NS_GET_NSTYPE);
    return type == CLONE_NEWNET;
}

// -------------------------------------------------------------------------------------------------
// Thread namespace switch
// -------------------------------------------------------------------------------------------------

namespace {

// Switches the calling thread back into its original namespace when the scope ends, including
// when the body throws.
class NetnsRestore {
  public:
    NetnsRestore(NetnsFd original, std::string target)
        : original_(std::move(original)), target_(std::move(target)) {}
    NetnsRestore(const NetnsRestore&) = delete;
    NetnsRestore& operator=(const NetnsRestore&) = delete;
    ~NetnsRestore() {
        if (setns(original_.get(), CLONE_NEWNET) != 0) {
            // Continuing would let every later operation of this thread (sockets, links, routes)
            // silently act on the sandbox instead of the host. No safe recovery exists.
            spdlog::critical("cannot switch thread back from network namespace {}: {}; aborting",
                             target_, errno_text(errno));
            std::abort();
        }
    }

  private:
    NetnsFd original_;
    std::string target_;
};

}  // namespace

Status run_in_netns(const std::string& path, const std::function<Status()>& body) {
    BPFNET_ASSIGN_OR_RETURN(NetnsFd target, NetnsFd::open(path));
    BPFNET_ASSIGN_OR_RETURN(NetnsFd original, NetnsFd::open(kThreadNetns));
    if (setns(target.get(), CLONE_NEWNET) != 0) {
        return sys_failure(fmt::format("enter network namespace {}", path), errno);
    }
    NetnsRestore restore(std::move(original), path);
    return body();
}

}  // namespace bpfnet::kernel
