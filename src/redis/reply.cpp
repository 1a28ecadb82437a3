#include "redis/reply.h"

#include <charconv>
#include <cstdlib>

namespace semcached::redis {

Result<double> Reply::AsDouble() const {
  switch (type) {
    case ReplyType::kDouble: return number;
    case ReplyType::kInteger:
    case ReplyType::kBool: return static_cast<double>(integer);
    case ReplyType::kString:
    case ReplyType::kStatus: {
      char* end = nullptr;
      double v = std::strtod(str.c_str(), &end);
      if (str.empty() || end != str.c_str() + str.size()) {
        return InvalidArgument("redis: not a number: '" + str + "'");
      }
      return v;
    }
    default: return InvalidArgument("redis: expected a number, got " + Describe());
  }
}

Result<long long> Reply::AsInteger() const {
  switch (type) {
    case ReplyType::kInteger:
    case ReplyType::kBool: return integer;
    case ReplyType::kString:
    case ReplyType::kStatus: {
      long long v = 0;
      auto [p, ec] = std::from_chars(str.data(), str.data() + str.size(), v);
      if (ec != std::errc() || p != str.data() + str.size() || str.empty()) {
        return InvalidArgument("redis: not an integer: '" + str + "'");
      }
      return v;
    }
    default: return InvalidArgument("redis: expected an integer, got " + Describe());
  }
}

const Reply* Reply::Field(std::string_view key) const {
  if (type != ReplyType::kMap && type != ReplyType::kArray) return nullptr;
  for (std::size_t i = 0; i + 1 < elements.size(); i += 2) {
    if (elements[i].IsText() && elements[i].str == key) return &elements[i + 1];
  }
  return nullptr;
}

std::string Reply::Describe() const {
  switch (type) {
    case ReplyType::kNil: return "nil";
    case ReplyType::kError: return "error '" + str + "'";
    case ReplyType::kInteger: return "integer " + std::to_string(integer);
    case ReplyType::kBool: return integer ? "true" : "false";
    case ReplyType::kDouble: return "double " + str;
    case ReplyType::kArray:
    case ReplyType::kSet:
    case ReplyType::kPush: return "array of " + std::to_string(elements.size());
    case ReplyType::kMap: return "map of " + std::to_string(elements.size() / 2);
    default: return "string of " + std::to_string(str.size()) + " bytes";
  }
}

Status ReplyStatus(const Reply& reply, std::string_view what) {
  if (!reply.IsError()) return Status::Ok();
  return InvalidArgument("redis " + std::string(what) + ": " + reply.str);
}

bool IsTransientServerError(std::string_view e) {
  for (std::string_view prefix : {"LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN", "CLUSTERDOWN"}) {
    if (e.substr(0, prefix.size()) == prefix) return true;
  }
  return false;
}

}  // namespace semcached::redis
