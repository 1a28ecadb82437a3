// Status and Result: how request paths report failure without exceptions.
//
// Every fallible operation on a request path returns a Status or a Result<T>. The error code
// says what kind of failure it is; adapters (HTTP, RESP) map codes to their wire errors in
// one place each (server/errors.cpp). This header must stay free of any transport notion.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace semcached {

enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,     // the caller sent something wrong; retrying will not help
  kNotFound,            // the named thing does not exist
  kUnauthenticated,     // no or unknown credentials
  kPermissionDenied,    // credentials valid, but not for this
  kPayloadTooLarge,     // input over a configured limit
  kResourceExhausted,   // a quota or rate limit
  kUnavailable,         // a backend (Redis, upstream) cannot be reached; may be retried
  kDeadlineExceeded,    // a timeout expired
  kDataLoss,            // stored data is corrupt or truncated
  kAlreadyExists,       // the named thing exists and may not be replaced
  kFailedPrecondition,  // the system is not in the state this needs (vectors of another embedder)
  kInternal,            // a bug
};

const char* ErrorCodeName(ErrorCode code);

// One field-level complaint, so clients can point at the bad part of their input.
struct FieldError {
  std::string field;
  std::string rule;
  std::string message;
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::vector<FieldError>& fields() const { return fields_; }

  Status& WithField(std::string field, std::string rule, std::string message) {
    fields_.push_back({std::move(field), std::move(rule), std::move(message)});
    return *this;
  }

  std::string ToString() const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
  std::vector<FieldError> fields_;
};

inline Status InvalidArgument(std::string m) { return {ErrorCode::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {ErrorCode::kNotFound, std::move(m)}; }
inline Status Unavailable(std::string m) { return {ErrorCode::kUnavailable, std::move(m)}; }
inline Status FailedPrecondition(std::string m) {
  return {ErrorCode::kFailedPrecondition, std::move(m)};
}
inline Status Internal(std::string m) { return {ErrorCode::kInternal, std::move(m)}; }
inline Status DataLoss(std::string m) { return {ErrorCode::kDataLoss, std::move(m)}; }

// A value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}        // NOLINT: implicit on purpose
  Result(Status status) : state_(std::move(status)) {  // NOLINT: implicit on purpose
    assert(!std::get<Status>(state_).ok() && "a Result needs a value or an error");
  }

  bool ok() const { return std::holds_alternative<T>(state_); }
  explicit operator bool() const { return ok(); }

  const T& value() const& { return std::get<T>(state_); }
  T& value() & { return std::get<T>(state_); }
  // By value from a temporary, so `for (auto& x : *Make())` does not dangle.
  T value() && { return std::get<T>(std::move(state_)); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  T operator*() && { return std::move(*this).value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

  // The error; Ok when there is a value.
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(state_); }

 private:
  std::variant<T, Status> state_;
};

}  // namespace semcached
