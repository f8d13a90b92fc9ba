#include <array>

#include "herald/event.h"

namespace herald {

std::string_view RejectReasonName(RejectReason reason) {
  static constexpr std::array<std::string_view, kRejectReasonCount> kNames = {
      "malformed_json",  "not_an_object", "missing_field",   "wrong_type",
      "unknown_channel", "unknown_event", "key_too_long",    "invalid_utf8",
      "oversize",        "too_deep",      "invalid_event_id"};
  return kNames[static_cast<size_t>(reason)];
}

}  // namespace herald
