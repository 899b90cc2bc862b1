// An owned file descriptor, closed on destruction (sockets, BPF objects, directories), and
// set_cloexec for descriptors opened without close-on-exec.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <utility>

namespace bpfnet {

class Fd {
  public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) {
            if (fd_ >= 0) ::close(fd_);
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    int get() const { return fd_; }

  private:
    int fd_;
};

// Marks a descriptor close-on-exec where it was opened without O_CLOEXEC/SOCK_CLOEXEC (asio opens
// its sockets so). The agent runs helper programs and those must not inherit its sockets (a child
// holding the API's listening socket would keep a dead agent "alive"). Best effort.
inline void set_cloexec(int fd) {
    const int flags = ::fcntl(fd, F_GETFD);
    if (flags >= 0) ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

}  // namespace bpfnet
