#include "engine/parse/envelope_parser.h"

#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"
#include "engine/common/assert.h"
#include "engine/common/strings.h"

namespace herald::parse {
namespace ondemand = simdjson::ondemand;
namespace {

enum class Field : uint8_t {
  kUnknown,
  kChannel,
  kEvent,
  kEventId,
  kApplicationId,
  kEntityId,
  kResource,
  kUser,
  kKey,
  kPayload
};

Field Classify(std::string_view k) {
  switch (k.size()) {
    case 3:
      return k == "key" ? Field::kKey : Field::kUnknown;
    case 4:
      return k == "user" ? Field::kUser : Field::kUnknown;
    case 5:
      return k == "event" ? Field::kEvent : Field::kUnknown;
    case 7:
      if (k == "channel") return Field::kChannel;
      if (k == "eventId") return Field::kEventId;
      if (k == "payload") return Field::kPayload;
      return Field::kUnknown;
    case 8:
      if (k == "entityId") return Field::kEntityId;
      if (k == "resource") return Field::kResource;
      return Field::kUnknown;
    case 13:
      return k == "applicationId" ? Field::kApplicationId : Field::kUnknown;
    default:
      return Field::kUnknown;
  }
}

std::string_view FieldName(Field f) {
  switch (f) {
    case Field::kChannel:
      return "channel";
    case Field::kEvent:
      return "event";
    case Field::kEventId:
      return "eventId";
    case Field::kApplicationId:
      return "applicationId";
    case Field::kEntityId:
      return "entityId";
    case Field::kResource:
      return "resource";
    case Field::kUser:
      return "user";
    case Field::kKey:
      return "key";
    case Field::kPayload:
      return "payload";
    case Field::kUnknown:
      break;
  }
  return "";
}

bool IsVisibleAscii(std::string_view s) {
  for (char c : s) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

// The contents of a string token without escapes, straight from the input (stage 1 has already
// validated its UTF-8 and control characters); nullopt when it holds escapes to decode.
std::optional<std::string_view> PlainString(std::string_view raw) {
  if (raw.size() < 2 || raw[0] != '"') return std::nullopt;
  const char* begin = raw.data() + 1;
  const char* quote = static_cast<const char*>(std::memchr(begin, '"', raw.size() - 1));
  if (!quote || std::memchr(begin, '\\', static_cast<size_t>(quote - begin))) return std::nullopt;
  return std::string_view(begin, static_cast<size_t>(quote - begin));
}

// A key without escapes is valid as stage 1 left it; one with escapes is decoded to check them.
simdjson::error_code CheckKey(ondemand::field& field, std::string_view* key) {
  const char* begin = field.key().raw();
  const char* quote = std::strchr(begin, '"');  // stage 1 guarantees the closing quote
  if (quote && !std::memchr(begin, '\\', static_cast<size_t>(quote - begin))) {
    *key = std::string_view(begin, static_cast<size_t>(quote - begin));
    return simdjson::SUCCESS;
  }
  return field.unescaped_key().get(*key);
}

}  // namespace

std::string_view TrimRight(std::string_view raw) {
  while (!raw.empty() &&
         (raw.back() == ' ' || raw.back() == '\t' || raw.back() == '\n' || raw.back() == '\r')) {
    raw.remove_suffix(1);
  }
  return raw;
}

RejectReason ReasonFor(simdjson::error_code e) {
  switch (e) {
    case simdjson::UTF8_ERROR:
      return RejectReason::kInvalidUtf8;
    case simdjson::DEPTH_ERROR:
      return RejectReason::kTooDeep;
    case simdjson::CAPACITY:
      return RejectReason::kOversize;
    default:
      return RejectReason::kMalformedJson;
  }
}

ParseOutcome Failure(RejectReason reason, simdjson::error_code json_error, size_t offset,
                     std::string_view field) {
  ParseOutcome o;
  o.ok = false;
  o.reason = reason;
  o.json_error = json_error;
  o.offset = offset;
  o.field = field;
  return o;
}

// A string field's value inside the input buffer: when it had escapes (the unescaped form is
// never longer), its unescaped bytes are written over its raw token `raw`.
std::string_view InPlace(char* data, std::string_view raw, std::string_view value) {
  char* target = data + (raw.data() + 1 - data);
  if (std::memcmp(target, value.data(), value.size()) != 0) {
    std::memmove(target, value.data(), value.size());
  }
  return std::string_view(target, value.size());
}

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
    : limits_(limits), parser_(limits.max_event_bytes), validator_(limits.max_event_bytes) {
  // Depth is checked by the validator, which counts its document root as a level of its own.
  if (validator_.allocate(4096, static_cast<size_t>(limits.max_payload_depth) + 1)) {
    // Left unallocated: the first parse allocates, and reports MEMALLOC if it cannot.
  }
}

// Validates a value that is forwarded verbatim: On-Demand skips what it is not asked for without
// checking it. Containers are sliced raw (a skip, no copy) and checked by simdjson's DOM stage 2,
// which validates every token far faster than visiting each value through On-Demand; scalars
// are checked on their raw tokens. `slice` receives the value's exact bytes.
simdjson::error_code EnvelopeParser::ValidateValue(ondemand::value value, std::string_view* slice) {
  const std::string_view raw = value.raw_json_token();
  if (raw.empty()) return simdjson::TAPE_ERROR;
  std::string_view bytes;
  switch (raw[0]) {
    case '{': {
      ondemand::object obj;
      if (auto e = value.get_object().get(obj)) return e;
      if (auto e = obj.raw_json().get(bytes)) return e;
      break;
    }
    case '[': {
      ondemand::array arr;
      if (auto e = value.get_array().get(arr)) return e;
      if (auto e = arr.raw_json().get(bytes)) return e;
      break;
    }
    case '"': {
      *slice = TrimRight(raw);
      if (PlainString(raw)) return simdjson::SUCCESS;
      std::string_view s;
      return value.get_string().get(s);
    }
    case 't':
      *slice = TrimRight(raw);
      return *slice == "true" ? simdjson::SUCCESS : simdjson::T_ATOM_ERROR;
    case 'f':
      *slice = TrimRight(raw);
      return *slice == "false" ? simdjson::SUCCESS : simdjson::F_ATOM_ERROR;
    case 'n':
      *slice = TrimRight(raw);
      return *slice == "null" ? simdjson::SUCCESS : simdjson::N_ATOM_ERROR;
    default:
      *slice = TrimRight(raw);
      return IsJsonNumber(*slice) ? simdjson::SUCCESS : simdjson::NUMBER_ERROR;
  }
  *slice = TrimRight(bytes);
  // The slice lies inside the caller's padded buffer, so the padding simdjson reads is there.
  return validator_.parse(reinterpret_cast<const uint8_t*>(slice->data()), slice->size(), false)
      .error();
}

ParseOutcome EnvelopeParser::Parse(char* data, size_t len, size_t capacity, EventView* out) {
  HERALD_ASSERT(capacity >= len + simdjson::SIMDJSON_PADDING);
  *out = EventView{};
  auto fail = [](RejectReason reason, std::string_view field = {},
                 simdjson::error_code json_error = simdjson::SUCCESS,
                 size_t offset = 0) { return Failure(reason, json_error, offset, field); };
  if (len > limits_.max_event_bytes) return fail(RejectReason::kOversize);

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
    // Brackets that do not balance: the event breaks at its end (truncated, or trailing content).
    return fail(ReasonFor(e), {}, e, len);
  }
  bool has_payload = false;
  for (auto field_result : obj) {
    ondemand::field field;
    if (auto e = std::move(field_result).get(field)) return fail(ReasonFor(e), {}, e, offset_now());
    std::string_view key;
    if (auto e = CheckKey(field, &key)) return fail(ReasonFor(e), {}, e, offset_now());
    const Field which = Classify(key);
    ondemand::value value = field.value();
    if (which == Field::kUnknown) {
      std::string_view ignored;
      if (auto e = ValidateValue(value, &ignored)) {
        return fail(ReasonFor(e), {}, e, offset_now());
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
      if (auto e = ValidateValue(value, &out->payload)) {
        return fail(ReasonFor(e), name, e, offset_now());
      }
      has_payload = true;
      continue;
    }
    if (type == ondemand::json_type::null && which != Field::kChannel && which != Field::kEvent) {
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
    if (auto plain = PlainString(raw)) {
      s = *plain;  // points into the input buffer: no copy
    } else if (auto e = value.get_string().get(s)) {
      return fail(RejectReason::kMalformedJson, name, e, offset_now());
    }
    if (s.size() > kMaxKeyBytes) return fail(RejectReason::kKeyTooLong, name);
    switch (which) {
      case Field::kChannel:
        out->channel = s;
        break;
      case Field::kEvent:
        out->event = s;
        break;
      case Field::kApplicationId:
        out->application_id = s;
        break;
      case Field::kEntityId:
        out->entity_id = s;
        break;
      case Field::kResource:
        out->resource = s;
        break;
      case Field::kUser:
        out->user = s;
        break;
      case Field::kKey:
        // Inside the input buffer too, like eventId: a notification slices it.
        out->key = InPlace(data, raw, s);
        break;
      case Field::kEventId: {
        if (s.empty() || !IsVisibleAscii(s)) return fail(RejectReason::kInvalidEventId, name);
        // Keep the id inside the input buffer so notifications can slice it: when it had escapes
        // (the unescaped form is never longer), write the unescaped bytes over the raw token.
        out->event_id = InPlace(data, raw, s);
        break;
      }
      case Field::kPayload:
      case Field::kUnknown:
        break;
    }
  }
  // The object is consumed: any position left is content after it (this simdjson has no
  // at_end(); current_location() reports OUT_OF_BOUNDS at the true end).
  if (const char* rest = nullptr; doc.current_location().get(rest) == simdjson::SUCCESS) {
    return fail(RejectReason::kMalformedJson, {}, simdjson::TRAILING_CONTENT,
                static_cast<size_t>(rest - data));
  }
  if (out->channel.empty()) return fail(RejectReason::kMissingField, "channel");
  if (out->event.empty()) return fail(RejectReason::kMissingField, "event");
  if (!has_payload) return fail(RejectReason::kMissingField, "payload");
  return ParseOutcome{};
}

std::string EnvelopeParser::Describe(const ParseOutcome& o, const EventView& view) {
  if (o.ok) return "ok";
  switch (o.reason) {
    case RejectReason::kMalformedJson:
      if (o.json_error == simdjson::TRAILING_CONTENT) {
        return Cat("malformed JSON at byte ", o.offset, ": content after its end");
      }
      if (o.json_error == simdjson::INCOMPLETE_ARRAY_OR_OBJECT) {
        return Cat("malformed JSON at byte ", o.offset,
                   ": unbalanced brackets (the event is truncated, or has content after its end)");
      }
      return Cat("malformed JSON", o.field.empty() ? "" : Cat(" in \"", o.field, "\""), " at byte ",
                 o.offset, ": ", simdjson::error_message(o.json_error));
    case RejectReason::kNotAnObject:
      return "the event must be a JSON object";
    case RejectReason::kMissingField:
      return Cat("missing required field \"", o.field, "\"");
    case RejectReason::kWrongType:
      return o.field == "payload" ? std::string("field \"payload\" must be an object or an array")
                                  : Cat("field \"", o.field, "\" must be a string");
    case RejectReason::kUnknownChannel:
      return Cat("unknown channel \"", view.channel.substr(0, 64), "\"");
    case RejectReason::kUnknownEvent:
      return Cat("event \"", view.event.substr(0, 64), "\" does not exist for channel ",
                 view.channel);
    case RejectReason::kKeyTooLong:
      return Cat("field \"", o.field, "\" is longer than ", kMaxKeyBytes, " bytes");
    case RejectReason::kInvalidUtf8:
      return "the event is not valid UTF-8";
    case RejectReason::kOversize:
      return "the event is larger than max_event_bytes";
    case RejectReason::kTooDeep:
      return "the payload is nested too deeply";
    case RejectReason::kInvalidEventId:
      return "field \"eventId\" must be 1..255 visible ASCII characters (it becomes webhook-id)";
  }
  return "rejected";
}

}  // namespace herald::parse
