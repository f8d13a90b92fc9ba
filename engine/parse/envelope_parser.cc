#include "engine/common/strings.h"
#include "engine/parse/envelope_parser.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/common/assert.h"

namespace herald::parse {
namespace ondemand = simdjson::ondemand;
namespace {

enum class Field : uint8_t {
  kUnknown, kChannel, kEvent, kEventId, kApplicationId, kEntityId, kResource, kUser, kKey, kPayload
};

Field Classify(std::string_view k) {
  switch (k.size()) {
    case 3: return k == "key" ? Field::kKey : Field::kUnknown;
    case 4: return k == "user" ? Field::kUser : Field::kUnknown;
    case 5: return k == "event" ? Field::kEvent : Field::kUnknown;
    case 7:
      if (k == "channel") return Field::kChannel;
      if (k == "eventId") return Field::kEventId;
      if (k == "payload") return Field::kPayload;
      return Field::kUnknown;
    case 8:
      if (k == "entityId") return Field::kEntityId;
      if (k == "resource") return Field::kResource;
      return Field::kUnknown;
    case 13: return k == "applicationId" ? Field::kApplicationId : Field::kUnknown;
    default: return Field::kUnknown;
  }
}

std::string_view FieldName(Field f) {
  switch (f) {
    case Field::kChannel: return "channel";
    case Field::kEvent: return "event";
    case Field::kEventId: return "eventId";
    case Field::kApplicationId: return "applicationId";
    case Field::kEntityId: return "entityId";
    case Field::kResource: return "resource";
    case Field::kUser: return "user";
    case Field::kKey: return "key";
    case Field::kPayload: return "payload";
    case Field::kUnknown: break;
  }
  return "";
}

RejectReason ReasonFor(simdjson::error_code e) {
  switch (e) {
    case simdjson::UTF8_ERROR: return RejectReason::kInvalidUtf8;
    case simdjson::DEPTH_ERROR: return RejectReason::kTooDeep;
    case simdjson::CAPACITY: return RejectReason::kOversize;
    default: return RejectReason::kMalformedJson;
  }
}

bool IsVisibleAscii(std::string_view s) {
  for (char c : s) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace

bool IsJsonNumber(std::string_view s) {
  size_t i = 0, n = s.size();
  auto digit = [&](size_t j) { return j < n && s[j] >= '0' && s[j] <= '9'; };
  if (i < n && s[i] == '-') ++i;
  if (!digit(i)) return false;
  if (s[i] == '0') {
    ++i;
  } else {
    while (digit(i)) ++i;
  }
  if (i < n && s[i] == '.') {
    ++i;
    if (!digit(i)) return false;
    while (digit(i)) ++i;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digit(i)) return false;
    while (digit(i)) ++i;
  }
  return i == n;
}

EnvelopeParser::EnvelopeParser(ParserLimits limits)
    : limits_(limits), parser_(limits.max_event_bytes) {}

simdjson::error_code EnvelopeParser::ValidateValue(ondemand::value value, int depth) {
  ondemand::json_type type;
  if (auto e = value.type().get(type)) return e;
  switch (type) {
    case ondemand::json_type::object: {
      if (depth >= limits_.max_payload_depth) {
        too_deep_ = true;
        return simdjson::DEPTH_ERROR;
      }
      ondemand::object obj;
      if (auto e = value.get_object().get(obj)) return e;
      for (auto field_result : obj) {
        ondemand::field field;
        if (auto e = std::move(field_result).get(field)) return e;
        std::string_view key;
        if (auto e = field.unescaped_key().get(key)) return e;
        if (auto e = ValidateValue(field.value(), depth + 1)) return e;
      }
      return simdjson::SUCCESS;
    }
    case ondemand::json_type::array: {
      if (depth >= limits_.max_payload_depth) {
        too_deep_ = true;
        return simdjson::DEPTH_ERROR;
      }
      ondemand::array arr;
      if (auto e = value.get_array().get(arr)) return e;
      for (auto element : arr) {
        ondemand::value v;
        if (auto e = element.get(v)) return e;
        if (auto e = ValidateValue(v, depth + 1)) return e;
      }
      return simdjson::SUCCESS;
    }
    case ondemand::json_type::string: {
      std::string_view s;
      return value.get_string().get(s);
    }
    case ondemand::json_type::number: {
      std::string_view raw = value.raw_json_token();
      while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\t' || raw.back() == '\n' ||
                              raw.back() == '\r')) {
        raw.remove_suffix(1);
      }
      return IsJsonNumber(raw) ? simdjson::SUCCESS : simdjson::NUMBER_ERROR;
    }
    case ondemand::json_type::boolean: {
      bool b;
      return value.get_bool().get(b);
    }
    case ondemand::json_type::null: {
      bool is_null = false;
      if (auto e = value.is_null().get(is_null)) return e;
      return is_null ? simdjson::SUCCESS : simdjson::N_ATOM_ERROR;
    }
  }
  return simdjson::TAPE_ERROR;
}

ParseOutcome EnvelopeParser::Parse(char* data, size_t len, size_t capacity, EventView* out) {
  HERALD_ASSERT(capacity >= len + simdjson::SIMDJSON_PADDING);
  *out = EventView{};
  ParseOutcome r;
  auto fail = [&](RejectReason reason, std::string_view field = {},
                  simdjson::error_code json_error = simdjson::SUCCESS, size_t offset = 0) {
    r.ok = false;
    r.reason = reason;
    r.field = field;
    r.json_error = json_error;
    r.offset = offset;
    return r;
  };
  if (len > limits_.max_event_bytes) return fail(RejectReason::kOversize);
  too_deep_ = false;

  ondemand::document doc;
  if (auto e = parser_.iterate(data, len, capacity).get(doc)) {
    // Input that ends inside a value is wrong at its end; for the rest, the position is unknown.
    return fail(ReasonFor(e), {}, e, e == simdjson::INCOMPLETE_ARRAY_OR_OBJECT ? len : 0);
  }
  auto offset_now = [&]() -> size_t {
    const char* loc = nullptr;
    if (doc.current_location().get(loc) != simdjson::SUCCESS || loc < data) return len;
    return static_cast<size_t>(loc - data);
  };
  ondemand::object obj;
  if (auto e = doc.get_object().get(obj)) {
    if (e == simdjson::INCORRECT_TYPE) return fail(RejectReason::kNotAnObject, {}, e);
    return fail(ReasonFor(e), {}, e, offset_now());
  }
  bool has_payload = false;
  for (auto field_result : obj) {
    ondemand::field field;
    if (auto e = std::move(field_result).get(field)) return fail(ReasonFor(e), {}, e, offset_now());
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return fail(ReasonFor(e), {}, e, offset_now());
    const Field which = Classify(key);
    ondemand::value value = field.value();
    if (which == Field::kUnknown) {
      if (auto e = ValidateValue(value, 0)) {
        return fail(too_deep_ ? RejectReason::kTooDeep : ReasonFor(e), {}, e, offset_now());
      }
      continue;
    }
    const std::string_view name = FieldName(which);
    ondemand::json_type type;
    if (auto e = value.type().get(type)) return fail(ReasonFor(e), name, e, offset_now());
    if (which == Field::kPayload) {
      if (type != ondemand::json_type::object && type != ondemand::json_type::array) {
        return fail(RejectReason::kWrongType, name, simdjson::SUCCESS, offset_now());
      }
      const char* begin = value.raw_json_token().data();
      if (auto e = ValidateValue(value, 0)) {
        return fail(too_deep_ ? RejectReason::kTooDeep : ReasonFor(e), name, e, offset_now());
      }
      // The iterator now rests on the token after the payload (',' or '}').
      const size_t end_offset = offset_now();
      const char* end = data + end_offset;
      while (end > begin && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' ||
                             end[-1] == '\r')) {
        --end;
      }
      out->payload = std::string_view(begin, static_cast<size_t>(end - begin));
      has_payload = true;
      continue;
    }
    if (type == ondemand::json_type::null &&
        which != Field::kChannel && which != Field::kEvent) {
      bool is_null = false;
      if (auto e = value.is_null().get(is_null); e || !is_null) {
        return fail(RejectReason::kMalformedJson, name, e, offset_now());
      }
      continue;  // an optional key given as null counts as absent
    }
    if (type != ondemand::json_type::string) {
      return fail(RejectReason::kWrongType, name, simdjson::SUCCESS, offset_now());
    }
    const std::string_view raw = value.raw_json_token();
    std::string_view s;
    if (auto e = value.get_string().get(s)) {
      return fail(RejectReason::kMalformedJson, name, e, offset_now());
    }
    if (s.size() > kMaxKeyBytes) return fail(RejectReason::kKeyTooLong, name);
    switch (which) {
      case Field::kChannel: out->channel = s; break;
      case Field::kEvent: out->event = s; break;
      case Field::kApplicationId: out->application_id = s; break;
      case Field::kEntityId: out->entity_id = s; break;
      case Field::kResource: out->resource = s; break;
      case Field::kUser: out->user = s; break;
      case Field::kKey: out->key = s; break;
      case Field::kEventId: {
        if (s.empty() || !IsVisibleAscii(s)) return fail(RejectReason::kInvalidEventId, name);
        // Keep the id inside the input buffer so notifications can slice it: when it had escapes
        // (the unescaped form is never longer), write the unescaped bytes over the raw token.
        char* target = data + (raw.data() + 1 - data);
        if (std::memcmp(target, s.data(), s.size()) != 0) std::memmove(target, s.data(), s.size());
        out->event_id = std::string_view(target, s.size());
        break;
      }
      case Field::kPayload:
      case Field::kUnknown: break;
    }
  }
  if (const char* rest = nullptr; doc.current_location().get(rest) == simdjson::SUCCESS) {
    return fail(RejectReason::kMalformedJson, {}, simdjson::TRAILING_CONTENT,
                static_cast<size_t>(rest - data));
  }
  if (out->channel.empty()) return fail(RejectReason::kMissingField, "channel");
  if (out->event.empty()) return fail(RejectReason::kMissingField, "event");
  if (!has_payload) return fail(RejectReason::kMissingField, "payload");
  return r;
}

std::string EnvelopeParser::Describe(const ParseOutcome& o, const EventView& view) {
  if (o.ok) return "ok";
  switch (o.reason) {
    case RejectReason::kMalformedJson:
      return Cat("malformed JSON", o.field.empty() ? "" : Cat(" in \"", o.field, "\""),
                          " at byte ", o.offset, ": ", simdjson::error_message(o.json_error));
    case RejectReason::kNotAnObject: return "the event must be a JSON object";
    case RejectReason::kMissingField:
      return Cat("missing required field \"", o.field, "\"");
    case RejectReason::kWrongType:
      return o.field == "payload"
                 ? std::string("field \"payload\" must be an object or an array")
                 : Cat("field \"", o.field, "\" must be a string");
    case RejectReason::kUnknownChannel:
      return Cat("unknown channel \"", view.channel.substr(0, 64), "\"");
    case RejectReason::kUnknownEvent:
      return Cat("event \"", view.event.substr(0, 64), "\" does not exist for channel ",
                          view.channel);
    case RejectReason::kKeyTooLong:
      return Cat("field \"", o.field, "\" is longer than ", kMaxKeyBytes, " bytes");
    case RejectReason::kInvalidUtf8: return "the event is not valid UTF-8";
    case RejectReason::kOversize: return "the event is larger than max_event_bytes";
    case RejectReason::kTooDeep: return "the payload is nested too deeply";
    case RejectReason::kInvalidEventId:
      return "field \"eventId\" must be 1..255 visible ASCII characters (it becomes webhook-id)";
  }
  return "rejected";
}

}  // namespace herald::parse
