// Data-plane types: what ingest reports and what a profile's queue holds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace herald {

// Bytes of readable slack simdjson needs after the end of an input; see Engine::IngestPadded.
inline constexpr size_t kInputPadding = 64;

// Why an event was refused. Every value is a distinct, counted outcome; none stops the engine.
enum class RejectReason : uint8_t {
  kMalformedJson,   // not JSON, or truncated
  kNotAnObject,     // the envelope is not a JSON object
  kMissingField,    // channel, event or payload absent
  kWrongType,       // a field of the wrong JSON type
  kUnknownChannel,  // channel not in the catalog
  kUnknownEvent,    // event not defined for that channel
  kKeyTooLong,      // a routing key or eventId over 255 bytes
  kInvalidUtf8,     // bytes that are not UTF-8
  kOversize,        // over max_event_bytes
  kTooDeep,         // payload nesting deeper than the engine allows
  kInvalidEventId,  // eventId not usable as a webhook-id (visible ASCII only)
};
inline constexpr int kRejectReasonCount = 11;

std::string_view RejectReasonName(RejectReason reason);  // stable snake_case, for metrics

// One bad event of an ingest call. `line` is 1-based (always 1 for a single envelope);
// `offset` is the byte offset of the problem within the input, when known.
struct IngestError {
  size_t line = 0;
  size_t offset = 0;
  RejectReason reason = RejectReason::kMalformedJson;
  std::string message;
};

// Summary of one ingest call.
struct IngestResult {
  size_t accepted = 0;        // parsed and routed (matched or not)
  size_t rejected = 0;        // refused, see errors
  size_t matched = 0;         // accepted events with at least one notification
  size_t notifications = 0;   // notifications enqueued
  size_t back_pressured = 0;  // notifications refused because a profile queue was full
  size_t deferred = 0;  // refused by a full queue, kept by the log to offer again (LogPosition)
};

}  // namespace herald
