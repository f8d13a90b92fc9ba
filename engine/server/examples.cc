#include "engine/server/examples.h"

#include <ctime>

#include "engine/common/json_writer.h"

namespace herald::server {
namespace {

// The platform's timestamp form: 2026-12-03T08:22:19.000+0000.
std::string Timestamp(int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[40];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
  return std::string(text) + "." + std::to_string(1000 + ms % 1000).substr(1) + "+0000";
}

void Platform(JsonWriter& w) {
  w.Key("platform")
      .BeginObject()
      .Field("applicationId", "default")
      .Field("entityId", "default")
      .EndObject();
}

}  // namespace

std::string ExamplePayload(std::string_view channel, std::string_view event, int64_t now_ms) {
  const std::string now = Timestamp(now_ms);
  std::string out;
  JsonWriter w(out);
  const bool email_user_event =
      channel == "EMAIL" && (event == "OPEN" || event == "CLICK" || event == "UNSUBSCRIBE" ||
                             event == "COMPLAINT" || event == "LATE_BOUNCE");
  if (email_user_event) {
    // Email user events are single objects; notificationType differs from the event's name.
    const std::string_view type = event == "OPEN"          ? "OPENED"
                                  : event == "CLICK"       ? "CLICKED"
                                  : event == "UNSUBSCRIBE" ? "UNSUBSCRIBED"
                                  : event == "COMPLAINT"   ? "COMPLAINED"
                                                           : "LATE_BOUNCE";
    w.BeginObject()
        .Field("notificationType", type)
        .Field("eventId", "8d2f8781-5f43-4e0b-9a3a-1c9d1e7e2b10")
        .Field("domain", "example.com")
        .Field("recipient", "john.doe@example.com");
    if (event == "CLICK") w.Field("url", "https://www.example.com/offer");
    if (event == "COMPLAINT" || event == "LATE_BOUNCE") w.Field("sender", "shop@example.com");
    w.Field("sendDateTime", now_ms - 60'000)
        .Field("messageId", "msg-1")
        .Field("bulkId", "bulk-1")
        .Key("recipientInfo")
        .BeginObject()
        .Field("deviceType", "Phone")
        .Field("os", "iOS 17")
        .Field("deviceName", "iPhone")
        .EndObject()
        .Field("applicationId", "default")
        .Field("entityId", "default")
        .EndObject();
    return out;
  }
  w.BeginObject().Key("results").BeginArray().BeginObject();
  if (channel == "BLOCKLIST") {
    w.Field("event", event)
        .Field("receivedAt", now)
        .Field("messageId", "msg-1")
        .Key("content")
        .BeginObject()
        .Field("sender", "385919998888")
        .Field("destination", "41793026731")
        .Field("channel", "SMS")
        .Field("sourceType", "MO")
        .EndObject();
  } else if (event == "DELIVERY") {
    w.Field("bulkId", "bulk-1")
        .Field("messageId", "msg-1")
        .Field("to", "447700900001")
        .Field("sender", "InfoSMS")
        .Field("channel", channel)
        .Field("sentAt", Timestamp(now_ms - 1000))
        .Field("doneAt", now)
        .Field("messageCount", 1)
        .Key("price")
        .BeginObject()
        .Field("pricePerMessage", 0.01)
        .Field("currency", "EUR")
        .EndObject()
        .Key("status")
        .BeginObject()
        .Field("groupId", 3)
        .Field("groupName", "DELIVERED")
        .Field("id", 5)
        .Field("name", "DELIVERED_TO_HANDSET")
        .Field("description", "Message delivered to handset")
        .EndObject()
        .Key("error")
        .BeginObject()
        .Field("groupId", 0)
        .Field("groupName", "OK")
        .Field("id", 0)
        .Field("name", "NO_ERROR")
        .Field("description", "No Error")
        .Field("permanent", false)
        .EndObject();
    Platform(w);
  } else if (event == "INBOUND_MESSAGE") {
    w.Field("messageId", "msg-1")
        .Field("from", "447700900001")
        .Field("to", "447700900123")
        .Field("channel", channel)
        .Field("text", "HELLO world")
        .Field("cleanText", "world")
        .Field("keyword", "HELLO")
        .Field("receivedAt", now)
        .Field("smsCount", 1)
        .Field("applicationId", "default")
        .Field("entityId", "default");
  } else if (event == "SEEN") {
    w.Field("messageId", "msg-1")
        .Field("from", "447700900123")
        .Field("to", "447700900001")
        .Field("channel", channel)
        .Field("sentAt", Timestamp(now_ms - 5000))
        .Field("seenAt", now);
    Platform(w);
  } else {
    w.Field("event", event)
        .Field("channel", channel)
        .Field("messageId", "msg-1")
        .Field("receivedAt", now);
    Platform(w);
  }
  w.EndObject().EndArray();
  if (event == "INBOUND_MESSAGE") w.Field("messageCount", 1).Field("pendingMessageCount", 0);
  w.EndObject();
  return out;
}

}  // namespace herald::server
