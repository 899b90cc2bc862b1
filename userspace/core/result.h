// One error model for all of bpfnet: functions that can fail return Result<T>, which holds either a
// value or an Error (a kind the API layer maps to a status code, plus a message a user
// understands).
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace bpfnet {

enum class ErrorKind {
    InvalidArgument,  // malformed or contradictory input
    NotFound,         // unknown id/name
    Conflict,         // name taken, overlapping subnet, address in use, object in use
    Exhausted,        // no free pool, address or port
    Unsupported,      // feature the kernel/build/configuration lacks
    Internal,         // a syscall/netlink/sqlite failure
};

const char* to_string(ErrorKind kind);

struct Error {
    ErrorKind kind = ErrorKind::Internal;
    std::string message;
};

inline Error make_error(ErrorKind kind, std::string message) {
    return Error{kind, std::move(message)};
}

// Tag type so `return fail(...)` works for any Result<T>.
struct Failure {
    Error error;
};
inline Failure fail(ErrorKind kind, std::string message) {
    return Failure{Error{kind, std::move(message)}};
}
inline Failure fail(Error error) {
    return Failure{std::move(error)};
}

template <typename T>
class [[nodiscard]] Result {
  public:
    Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}  // NOLINT(implicit)
    Result(Failure failure) : state_(std::in_place_index<1>, std::move(failure.error)) {}  // NOLINT

    bool ok() const { return state_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & { return std::get<0>(state_); }
    const T& value() const& { return std::get<0>(state_); }
    T&& value() && { return std::get<0>(std::move(state_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const Error& error() const { return std::get<1>(state_); }

  private:
    std::variant<T, Error> state_;
};

template <>
class [[nodiscard]] Result<void> {
  public:
    Result() = default;
    Result(Failure failure) : error_(std::move(failure.error)), ok_(false) {}  // NOLINT

    bool ok() const { return ok_; }
    explicit operator bool() const { return ok_; }
    const Error& error() const { return error_; }

  private:
    Error error_;
    bool ok_ = true;
};

using Status = Result<void>;

}  // namespace bpfnet

// Propagate a failure from an expression returning Result<...>/Status.
#define BPFNET_TRY(expr)                                                            \
    do {                                                                            \
        auto bpfnet_try_result_ = (expr);                                           \
        if (!bpfnet_try_result_) return ::bpfnet::fail(bpfnet_try_result_.error()); \
    } while (0)

#define BPFNET_CONCAT_INNER(a, b) a##b
#define BPFNET_CONCAT(a, b) BPFNET_CONCAT_INNER(a, b)
// Assign the value of a Result<T> expression to `lhs`, or propagate its failure. The temporary's
// name comes from __COUNTER__ so invocations spanning several lines still get one consistent name.
#define BPFNET_ASSIGN_OR_RETURN(lhs, expr) \
    BPFNET_ASSIGN_OR_RETURN_IMPL(BPFNET_CONCAT(bpfnet_result_, __COUNTER__), lhs, expr)
#define BPFNET_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
    auto tmp = (expr);                               \
    if (!tmp) return ::bpfnet::fail(tmp.error());    \
    lhs = std::move(tmp).value()
