// A Redis reply as an owned value, the same for RESP2 and RESP3.
//
// Why: hiredis's reader produces C trees that must be freed and differ between protocols
// (RESP3 sends maps, doubles and booleans where RESP2 sends flat arrays, strings and
// integers). Callers read replies through the accessors here, which accept both shapes, so
// no code above this layer knows which protocol a connection speaks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace semcached::redis {

enum class ReplyType : std::uint8_t {
  kNil,
  kString,
  kStatus,
  kError,
  kInteger,
  kDouble,
  kBool,
  kArray,
  kMap,  // elements hold key, value, key, value...
  kSet,
  kPush,
  kVerbatim,
  kBigNumber,
};

struct Reply {
  ReplyType type = ReplyType::kNil;
  std::string str;        // string, status, error, verbatim, big number; a double's text
  long long integer = 0;  // integer; bool as 0/1
  double number = 0;      // double
  std::vector<Reply> elements;

  bool IsError() const { return type == ReplyType::kError; }
  bool IsNil() const { return type == ReplyType::kNil; }
  // Arrays, sets, pushes and maps (a map's elements are its keys and values in order).
  bool IsAggregate() const {
    return type == ReplyType::kArray || type == ReplyType::kMap || type == ReplyType::kSet ||
           type == ReplyType::kPush;
  }
  bool IsText() const {
    return type == ReplyType::kString || type == ReplyType::kStatus ||
           type == ReplyType::kVerbatim || type == ReplyType::kBigNumber;
  }
  // A number from an integer, a bool, a double, or a numeric string (RESP2 sends scores so).
  Result<double> AsDouble() const;
  Result<long long> AsInteger() const;
  // The value under `key` in a map (RESP3) or a flat key/value array (RESP2); nullptr if none.
  const Reply* Field(std::string_view key) const;
  // A one-line rendering for logs and error messages.
  std::string Describe() const;
};

// Ok for anything but an error reply; an error reply becomes kInvalidArgument carrying the
// server's text, prefixed with `what` (the command, for the message).
Status ReplyStatus(const Reply& reply, std::string_view what);

// Error replies that mean "not now" rather than "never": the command was not executed and may
// be sent again (LOADING, BUSY, TRYAGAIN, MASTERDOWN, CLUSTERDOWN).
bool IsTransientServerError(std::string_view error_text);

}  // namespace semcached::redis
