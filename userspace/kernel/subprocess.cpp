#include "kernel/subprocess.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/fd.h"

extern char** environ;

namespace bpfnet::kernel {
namespace {

// posix_spawn's file actions and attributes are C objects with init/destroy pairs.
class SpawnFileActions {
  public:
    SpawnFileActions() { ok_ = posix_spawn_file_actions_init(&actions_) == 0; }
    ~SpawnFileActions() {
        if (ok_) posix_spawn_file_actions_destroy(&actions_);
    }
    SpawnFileActions(const SpawnFileActions&) = delete;
    SpawnFileActions& operator=(const SpawnFileActions&) = delete;
    bool ok() const { return ok_; }
    posix_spawn_file_actions_t* get() { return &actions_; }

  private:
    posix_spawn_file_actions_t actions_{};
    bool ok_ = false;
};

}  // namespace

Result<ProgramResult> run_program(const std::vector<std::string>& argv) {
    if (argv.empty()) return fail(ErrorKind::InvalidArgument, "run_program: no program given");
    int fds[2];
    // O_CLOEXEC: the agent's other threads may spawn too; only this child gets the write end, as
    // its stdout/stderr through dup2 (which clears the flag on the copy).
    if (pipe2(fds, O_CLOEXEC) != 0)
        return fail(ErrorKind::Internal, fmt::format("pipe: {}", std::strerror(errno)));
    Fd read_end(fds[0]);
    Fd write_end(fds[1]);

    SpawnFileActions actions;
    if (!actions.ok() ||
        posix_spawn_file_actions_addopen(actions.get(), STDIN_FILENO, "/dev/null", O_RDONLY, 0) ||
        posix_spawn_file_actions_adddup2(actions.get(), write_end.get(), STDOUT_FILENO) ||
        posix_spawn_file_actions_adddup2(actions.get(), write_end.get(), STDERR_FILENO)) {
        return fail(ErrorKind::Internal, "posix_spawn: cannot set up the child's descriptors");
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = 0;
    if (int err = posix_spawnp(&pid, args[0], actions.get(), nullptr, args.data(), environ)) {
        return fail(err == ENOENT ? ErrorKind::NotFound : ErrorKind::Internal,
                    fmt::format("cannot run {}: {}", argv[0], std::strerror(err)));
    }
    write_end = Fd(-1);  // EOF on the read end once the child (and its children) exit

    ProgramResult result;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(read_end.get(), buf, sizeof buf);
        if (n > 0) {
            result.output.append(buf, static_cast<size_t>(n));
        } else if (n == 0 || errno != EINTR) {
            break;
        }
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return fail(ErrorKind::Internal,
                        fmt::format("waitpid {}: {}", argv[0], std::strerror(errno)));
    }
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return result;
}

}  // namespace bpfnet::kernel
