// Parses the event envelope of DESIGN §3 with simdjson On-Demand, in place, from a padded buffer.
// Routing keys come back as views (valid until the next Parse); the payload comes back as a raw
// slice of the input — never copied, never re-serialized. The whole document is validated
// (payload included, since it is forwarded verbatim), so malformed JSON never reaches a webhook.
//
// One parser per router thread; not thread-safe. Steady state allocates nothing: simdjson's
// buffers grow to the largest event seen and are then reused.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "herald/event.h"
#include "simdjson.h"

namespace herald::parse {

inline constexpr size_t kMaxKeyBytes = 255;

struct EventView {
  std::string_view channel;
  std::string_view event;
  std::string_view application_id;
  std::string_view entity_id;
  std::string_view resource;
  std::string_view user;
  std::string_view key;
  std::string_view event_id;  // points into the input buffer (unescaped in place), may be empty
  std::string_view payload;   // raw slice of the input buffer
};

// Outcome of one parse. Carries no allocated message: Describe() builds one on the cold path.
struct ParseOutcome {
  bool ok = true;
  RejectReason reason = RejectReason::kMalformedJson;
  size_t offset = 0;       // byte offset of the problem within the event
  std::string_view field;  // the field concerned, when there is one (static storage)
  simdjson::error_code json_error = simdjson::SUCCESS;
};

// A failed outcome.
ParseOutcome Failure(RejectReason reason, simdjson::error_code json_error = simdjson::SUCCESS,
                     size_t offset = 0, std::string_view field = {});
// The reason a simdjson error means for an event (invalid UTF-8, too deep, else malformed).
RejectReason ReasonFor(simdjson::error_code e);

struct ParserLimits {
  size_t max_event_bytes = 1 << 20;
  int max_payload_depth = 64;
};

class EnvelopeParser {
 public:
  explicit EnvelopeParser(ParserLimits limits = {});

  // Parses one envelope at data[0, len). `capacity` - `len` must be >= kInputPadding (readable).
  // The buffer is writable: an escaped eventId is unescaped in place so it can be sliced.
  ParseOutcome Parse(char* data, size_t len, size_t capacity, EventView* out);

  // A message a user can act on, e.g. `unknown channel "SMX"`; `view` supplies the values.
  static std::string Describe(const ParseOutcome& outcome, const EventView& view);

 private:
  simdjson::error_code ValidateValue(simdjson::ondemand::value value, std::string_view* slice);

  ParserLimits limits_;
  simdjson::ondemand::parser parser_;
  simdjson::dom::parser validator_;
};

// `raw` without trailing JSON whitespace.
std::string_view TrimRight(std::string_view raw);

// True when `s` is a JSON number (RFC 8259 grammar).
bool IsJsonNumber(std::string_view s);

}  // namespace herald::parse
