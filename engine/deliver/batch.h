// What one webhook request carries (DESIGN §5). A lone notification goes verbatim; more go as
// {"results":[…]}, a payload that is {"results":[…]} itself contributing its items. The
// x-herald-* headers list each distinct value once while they fit in kMaxListedBytes, then
// ",+N" for the N left out, so a batch's headers stay within what receivers take. A batch's
// webhook-id is a stable hash of its members' ids: the same members give the same id in every
// process, so a receiver can de-duplicate a retried batch across restarts too.
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "herald/sink.h"
#include "herald/webhook_deliverer.h"

namespace herald::deliver {

// Each x-herald-* header of a batch lists its distinct values up to this many bytes.
inline constexpr size_t kMaxListedBytes = 1024;

// One notification held by the deliverer: from the engine, or a replayed dead letter.
struct Item {
  Notification notification;
  std::shared_ptr<const DeadLetter> letter;  // its payload has SIMDJSON_PADDING spare capacity

  std::string_view payload() const { return letter ? letter->payload : notification.payload(); }
  std::string_view webhook_id() const {
    return letter ? letter->webhook_id : notification.webhook_id();
  }
  std::string_view subscription_id() const {
    return letter ? letter->subscription_id : notification.subscription_id();
  }
  std::string_view channel() const { return letter ? letter->channel : notification.channel(); }
  std::string_view event() const { return letter ? letter->event : notification.event(); }
  // Replayed dead letters are not ordered: their turn came and went.
  std::string_view key() const { return letter ? std::string_view() : notification.key(); }
};

// One request's worth of notifications; kept together across retries, so its webhook-id and
// body stay the same.
struct Batch {
  std::vector<Item> items;
  std::string id;
  std::string body;  // {"results":[…]}; empty for a lone notification, sent verbatim
  int attempts = 0;
  int last_status = 0;
  std::string last_error;
  bool probe = false;        // the one request of a half-open circuit
  bool cloudevents = false;  // `body` is CloudEvents (see CloudEventsBody)
  // The x-herald-* header values: each distinct value once, comma-separated.
  std::string subscriptions, channels, events;

  std::string_view request_body() const { return body.empty() ? items[0].payload() : body; }
};

// The batch as CloudEvents 1.0 in structured mode: one event when it has one item (its id the
// webhook-id), else a batch (a JSON array), each event with its own id. `type` is
// "<channel>.<event>", `source` "/herald/<channel>", `subject` the subscription, `time` `now_ms`
// (RFC 3339), `data` the payload verbatim.
std::string CloudEventsBody(const Batch& batch, int64_t now_ms);
// Its content type: application/cloudevents+json, or application/cloudevents-batch+json.
std::string_view CloudEventsContentType(const Batch& batch);

class BatchBuilder {
 public:
  // The next batch from the front of `ready` (not empty): at least one item, and at most
  // `max_items` counting the items of {"results":[…]} payloads.
  std::unique_ptr<Batch> Form(std::deque<Item>& ready, size_t max_items);

 private:
  // A {"results":[…]} payload's items, as the text between the brackets, and their count.
  std::optional<std::pair<std::string_view, size_t>> ResultsOf(std::string_view payload);

  simdjson::ondemand::parser parser_;
};

}  // namespace herald::deliver
