// Tests of the envelope parser (engine/parse/envelope_parser.h, DESIGN §3): routing keys are
// extracted, the payload is the exact raw slice of the input, and every kind of bad input is
// refused with its own RejectReason and an actionable message, after which the same parser keeps
// parsing good events. Inputs live in buffers of exactly len + kInputPadding bytes so that
// AddressSanitizer catches any read past the padding.
#include "engine/parse/envelope_parser.h"

#include <cstring>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "herald/event.h"

namespace herald::parse {
namespace {

constexpr std::string_view kFull =
    R"({"channel":"SMS","event":"DELIVERY","eventId":"e-1","applicationId":"a1","entityId":"e1",)"
    R"("resource":"InfoSMS","user":"jdoe","key":"msg-42","payload":{"results":[{"messageId":"m1"}]}})";
constexpr std::string_view kFullPayload = R"({"results":[{"messageId":"m1"}]})";

// A writable input followed by kInputPadding readable bytes (filled with `fill`).
class PaddedInput {
 public:
  explicit PaddedInput(std::string_view json, char fill = '\0')
      : bytes_(json.size() + kInputPadding, fill), len_(json.size()) {
    std::memcpy(bytes_.data(), json.data(), json.size());
  }
  char* data() { return bytes_.data(); }
  size_t size() const { return len_; }
  size_t capacity() const { return bytes_.size(); }
  // True when `view` lies inside the input bytes (not a copy elsewhere).
  bool Holds(std::string_view view) const {
    return view.data() >= bytes_.data() && view.data() + view.size() <= bytes_.data() + len_;
  }

 private:
  std::vector<char> bytes_;
  size_t len_;
};

testing::AssertionResult Mentions(const std::string& text, std::string_view part) {
  if (text.find(part) != std::string::npos) return testing::AssertionSuccess();
  return testing::AssertionFailure() << "\"" << text << "\" does not mention \"" << part << "\"";
}

std::string Envelope(std::string_view payload, std::string_view extra = "") {
  return std::string(R"({"channel":"SMS","event":"DELIVERY",)") + std::string(extra) +
         R"("payload":)" + std::string(payload) + "}";
}

class EnvelopeParserTest : public testing::Test {
 protected:
  ParseOutcome Parse(std::string_view json) { return Parse(parser_, json); }
  ParseOutcome Parse(EnvelopeParser& parser, std::string_view json) {
    input_ = std::make_unique<PaddedInput>(json);
    view_ = EventView{};
    return parser.Parse(input_->data(), input_->size(), input_->capacity(), &view_);
  }
  // The engine keeps running after a bad event: the same parser then parses a good one.
  void ExpectParsesGoodEvent(EnvelopeParser& parser) {
    const ParseOutcome outcome = Parse(parser, kFull);
    ASSERT_TRUE(outcome.ok) << EnvelopeParser::Describe(outcome, view_);
    EXPECT_EQ(view_.channel, "SMS");
    EXPECT_EQ(view_.event, "DELIVERY");
    EXPECT_EQ(view_.event_id, "e-1");
    EXPECT_EQ(view_.user, "jdoe");
    EXPECT_EQ(view_.payload, kFullPayload);
  }

  EnvelopeParser parser_;
  std::unique_ptr<PaddedInput> input_;
  EventView view_;
};

// --- Good envelopes ---

TEST_F(EnvelopeParserTest, FullEnvelopeOfDesignExtractsEveryKey) {
  const ParseOutcome outcome = Parse(kFull);
  ASSERT_TRUE(outcome.ok) << EnvelopeParser::Describe(outcome, view_);
  EXPECT_EQ(view_.channel, "SMS");
  EXPECT_EQ(view_.event, "DELIVERY");
  EXPECT_EQ(view_.event_id, "e-1");
  EXPECT_EQ(view_.application_id, "a1");
  EXPECT_EQ(view_.entity_id, "e1");
  EXPECT_EQ(view_.resource, "InfoSMS");
  EXPECT_EQ(view_.user, "jdoe");
  EXPECT_EQ(view_.key, "msg-42");
  EXPECT_EQ(view_.payload, kFullPayload);
  // The payload is a slice of the input, at the very place it was written.
  EXPECT_EQ(view_.payload.data(), input_->data() + kFull.find(kFullPayload));
  EXPECT_TRUE(input_->Holds(view_.event_id));
  EXPECT_EQ(EnvelopeParser::Describe(outcome, view_), "ok");
}

TEST_F(EnvelopeParserTest, OptionalKeysMayBeAbsent) {
  const ParseOutcome outcome = Parse(Envelope("{}"));
  ASSERT_TRUE(outcome.ok) << EnvelopeParser::Describe(outcome, view_);
  EXPECT_EQ(view_.payload, "{}");
  for (std::string_view v : {view_.event_id, view_.application_id, view_.entity_id, view_.resource,
                             view_.user, view_.key}) {
    EXPECT_TRUE(v.empty()) << v;
  }
}

TEST_F(EnvelopeParserTest, PayloadIsTheExactRawSlice) {
  const struct {
    const char* what;
    std::string json;
    std::string_view payload;
  } cases[] = {
      {"array", Envelope(R"([1,{"a":[true,false,null]},"x",-1.5e3])"),
       R"([1,{"a":[true,false,null]},"x",-1.5e3])"},
      {"empty array", Envelope("[]"), "[]"},
      {"inner whitespace kept", Envelope(R"({ "a" : [ 1 , 2 ] })"), R"({ "a" : [ 1 , 2 ] })"},
      {"whitespace around excluded",
       "{\"channel\":\"SMS\", \"payload\" :  \n\t {\"a\":1}  \r\n , \"event\":\"DELIVERY\"}",
       R"({"a":1})"},
      {"last field, whitespace before the closing brace",
       "{\"channel\":\"SMS\",\"event\":\"DELIVERY\",\"payload\":[0]   \n}", "[0]"},
      {"first field", R"({"payload":{"x":"y"},"channel":"SMS","event":"DELIVERY"})",
       R"({"x":"y"})"},
      {"escapes left as written", Envelope(R"({"s":"a\"b\\c\u00e9"})"), R"({"s":"a\"b\\c\u00e9"})"},
      {"UTF-8 kept", Envelope(R"({"text":"配達しました"})"), R"({"text":"配達しました"})"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    const ParseOutcome outcome = Parse(c.json);
    ASSERT_TRUE(outcome.ok) << EnvelopeParser::Describe(outcome, view_);
    EXPECT_EQ(view_.payload, c.payload);
    EXPECT_TRUE(input_->Holds(view_.payload));
    EXPECT_EQ(view_.channel, "SMS");
    EXPECT_EQ(view_.event, "DELIVERY");
  }
}

TEST_F(EnvelopeParserTest, UnknownFieldsAreIgnoredEvenWhenTheyNestKnownNames) {
  const ParseOutcome outcome = Parse(Envelope(
      "{}", R"("extra":{"channel":"MMS","deep":[{"event":"CLICK","payload":1}]},)"
            R"("Channel":"X","n":null,"num":-0.5e-3,"t":true,"f":false,"s":"str","a":[],)"));
  ASSERT_TRUE(outcome.ok) << EnvelopeParser::Describe(outcome, view_);
  EXPECT_EQ(view_.channel, "SMS");
  EXPECT_EQ(view_.event, "DELIVERY");
  EXPECT_EQ(view_.payload, "{}");
}

TEST_F(EnvelopeParserTest, EscapedKeysAndValuesAreUnescaped) {
  const ParseOutcome outcome =
      Parse(R"({"chan\u006eel":"SMS","\u0065vent":"DELIV\u0045RY","pay\u006coad":{"a":1},)"
            R"("resource":"Info\"SMS\\","user":"\u65e5\u672c","app\u006cicationId":"a\/1"})");
  ASSERT_TRUE(outcome.ok) << EnvelopeParser::Describe(outcome, view_);
  EXPECT_EQ(view_.channel, "SMS");
  EXPECT_EQ(view_.event, "DELIVERY");
  EXPECT_EQ(view_.payload, R"({"a":1})");
  EXPECT_EQ(view_.resource, "Info\"SMS\\");
  EXPECT_EQ(view_.user, "日本");
  EXPECT_EQ(view_.application_id, "a/1");
}

TEST_F(EnvelopeParserTest, EscapedEventIdIsUnescapedInsideTheInputBuffer) {
  for (const auto& [raw, unescaped] : std::vector<std::pair<std::string, std::string>>{
           {R"(e\u002d1)", "e-1"},
           {R"(a\/b)", "a/b"},
           {R"(\u0041\u0042\u0043)", "ABC"},
           {R"(q\"q)", "q\"q"},
       }) {
    SCOPED_TRACE(raw);
    const ParseOutcome outcome = Parse(Envelope("{}", R"("eventId":")" + raw + R"(",)"));
    ASSERT_TRUE(outcome.ok) << EnvelopeParser::Describe(outcome, view_);
    EXPECT_EQ(view_.event_id, unescaped);
    EXPECT_TRUE(input_->Holds(view_.event_id)) << "event_id must point into the input buffer";
    EXPECT_EQ(view_.payload, "{}");
  }
}

// Per-key ordering slices the key out of the buffer like the eventId.
TEST_F(EnvelopeParserTest, EscapedKeyIsUnescapedInsideTheInputBuffer) {
  for (const auto& [raw, unescaped] : std::vector<std::pair<std::string, std::string>>{
           {R"(msg-42)", "msg-42"},
           {R"(q\"q\\)", "q\"q\\"},
           {R"(\u65e5\u672c)", "日本"},
       }) {
    SCOPED_TRACE(raw);
    const ParseOutcome outcome =
        Parse(Envelope("{}", R"("key":")" + raw + R"(","eventId":"e\u002d1",)"));
    ASSERT_TRUE(outcome.ok) << EnvelopeParser::Describe(outcome, view_);
    EXPECT_EQ(view_.key, unescaped);
    EXPECT_TRUE(input_->Holds(view_.key)) << "key must point into the input buffer";
    EXPECT_EQ(view_.event_id, "e-1");
    EXPECT_EQ(view_.payload, "{}");
  }
}

TEST_F(EnvelopeParserTest, EventIdWithoutEscapesIsTheRawBytes) {
  const std::string json = Envelope("{}", R"("eventId":"evt_01HZX-9",)");
  ASSERT_TRUE(Parse(json).ok);
  EXPECT_EQ(view_.event_id, "evt_01HZX-9");
  EXPECT_EQ(view_.event_id.data(), input_->data() + json.find("evt_01HZX-9"));
}

TEST_F(EnvelopeParserTest, NullOptionalKeysCountAsAbsent) {
  const ParseOutcome outcome =
      Parse(Envelope("[]", R"("eventId":null,"applicationId":null,"entityId":null,)"
                           R"("resource":null,"user":null,"key":null,)"));
  ASSERT_TRUE(outcome.ok) << EnvelopeParser::Describe(outcome, view_);
  for (std::string_view v : {view_.event_id, view_.application_id, view_.entity_id, view_.resource,
                             view_.user, view_.key}) {
    EXPECT_TRUE(v.empty()) << v;
  }
}

TEST_F(EnvelopeParserTest, SurroundingWhitespaceIsAccepted) {
  const ParseOutcome outcome = Parse(" \n\t" + std::string(kFull) + " \r\n");
  ASSERT_TRUE(outcome.ok) << EnvelopeParser::Describe(outcome, view_);
  EXPECT_EQ(view_.payload, kFullPayload);
}

TEST_F(EnvelopeParserTest, KeysOfExactly255BytesAreAccepted) {
  const std::string v(kMaxKeyBytes, 'k');
  for (const char* field :
       {"channel", "event", "eventId", "applicationId", "entityId", "resource", "user", "key"}) {
    SCOPED_TRACE(field);
    std::string json = R"({"channel":"SMS","event":"DELIVERY","payload":{},")";
    json += std::string(field) + R"(":")" + v + R"("})";
    const ParseOutcome outcome = Parse(json);
    ASSERT_TRUE(outcome.ok) << EnvelopeParser::Describe(outcome, view_);
  }
  EXPECT_EQ(view_.key, v);
}

// simdjson reads the padding; its content must never change the outcome.
TEST_F(EnvelopeParserTest, PaddingContentIsIgnored) {
  const std::string truncated(kFull.substr(0, kFull.size() - 1));
  for (const char fill : {'\0', ' ', '}', ']', '"', ',', '\xff'}) {
    SCOPED_TRACE(testing::Message() << "padding filled with " << static_cast<int>(fill));
    PaddedInput good(kFull, fill);
    EventView view;
    ParseOutcome outcome = parser_.Parse(good.data(), good.size(), good.capacity(), &view);
    ASSERT_TRUE(outcome.ok) << EnvelopeParser::Describe(outcome, view);
    EXPECT_EQ(view.payload, kFullPayload);
    EXPECT_EQ(view.key, "msg-42");

    PaddedInput bad(truncated, fill);
    outcome = parser_.Parse(bad.data(), bad.size(), bad.capacity(), &view);
    EXPECT_FALSE(outcome.ok);
    EXPECT_EQ(outcome.reason, RejectReason::kMalformedJson);
  }
}

// Lines of an NDJSON batch are parsed in place: the bytes after one line are the next line, and
// the parser must read none of them (not even an invalid one).
TEST_F(EnvelopeParserTest, ParsesOneLineOfABatchInPlace) {
  const std::string line1 = std::string(kFull);
  const std::string line2 = Envelope(R"({"n":2})", R"("user":"u2",)");
  const std::string batch = line1 + "\n" + line2 + "\n" + "{\"channel\":\"\xff\"}\n";
  PaddedInput input(batch);
  EventView view;
  ParseOutcome outcome = parser_.Parse(input.data(), line1.size(), input.capacity(), &view);
  ASSERT_TRUE(outcome.ok) << EnvelopeParser::Describe(outcome, view);
  EXPECT_EQ(view.payload, kFullPayload);
  EXPECT_EQ(view.user, "jdoe");

  char* second = input.data() + line1.size() + 1;
  outcome = parser_.Parse(second, line2.size(), input.capacity() - line1.size() - 1, &view);
  ASSERT_TRUE(outcome.ok) << EnvelopeParser::Describe(outcome, view);
  EXPECT_EQ(view.payload, R"({"n":2})");
  EXPECT_EQ(view.user, "u2");
}

// --- Bad envelopes ---

struct BadEvent {
  const char* what;
  std::string json;
  RejectReason reason;
  std::string_view field;                // expected ParseOutcome::field ("" = none)
  std::vector<std::string> description;  // parts Describe() must mention
};

void PrintTo(const BadEvent& c, std::ostream* os) { *os << c.what; }

class BadEnvelope : public EnvelopeParserTest, public testing::WithParamInterface<BadEvent> {};

TEST_P(BadEnvelope, IsRejectedWithItsReasonAndTheParserRecovers) {
  const BadEvent& c = GetParam();
  const ParseOutcome outcome = Parse(c.json);
  ASSERT_FALSE(outcome.ok) << c.json;
  EXPECT_EQ(outcome.reason, c.reason)
      << RejectReasonName(outcome.reason) << ": " << EnvelopeParser::Describe(outcome, view_);
  EXPECT_EQ(outcome.field, c.field);
  EXPECT_LE(outcome.offset, c.json.size());
  const std::string description = EnvelopeParser::Describe(outcome, view_);
  for (const std::string& part : c.description) EXPECT_TRUE(Mentions(description, part));
  ExpectParsesGoodEvent(parser_);
}

// `depth` nested arrays around a value: [[...[1]...]] (`inner` = "" for an empty innermost one).
std::string Nested(int depth, std::string_view inner = "1") {
  return std::string(depth, '[') + std::string(inner) + std::string(depth, ']');
}

std::string WithField(std::string_view field, std::string_view raw_value) {
  return Envelope("{}", "\"" + std::string(field) + "\":" + std::string(raw_value) + ",");
}

std::vector<BadEvent> BadEvents() {
  using R = RejectReason;
  const std::string long_value = "\"" + std::string(kMaxKeyBytes + 1, 'k') + "\"";
  const std::string full(kFull);
  // clang-format off
  std::vector<BadEvent> cases = {
    {"empty input", "", R::kMalformedJson, "", {"malformed JSON"}},
    {"only whitespace", "   \n", R::kMalformedJson, "", {"malformed JSON"}},
    {"double comma", R"({"channel":"SMS",,"event":"DELIVERY","payload":{}})",
     R::kMalformedJson, "", {"malformed JSON", "at byte"}},
    {"missing colon", R"({"channel" "SMS","event":"DELIVERY","payload":{}})",
     R::kMalformedJson, "", {"malformed JSON"}},
    {"unquoted key", R"({channel:"SMS","event":"DELIVERY","payload":{}})",
     R::kMalformedJson, "", {"malformed JSON"}},
    {"unclosed string", R"({"channel":"SMS,"event":"DELIVERY","payload":{}})",
     R::kMalformedJson, "", {"malformed JSON"}},
    {"unescaped tab in a string", Envelope("{\"a\":\"tab\there\"}"),
     R::kMalformedJson, "", {"malformed JSON"}},
    {"truncated", R"({"channel":"SMS","event":"DELIVERY","payload":{"a":1})",
     R::kMalformedJson, "", {"malformed JSON"}},
    {"truncated inside payload", R"({"channel":"SMS","event":"DELIVERY","payload":{"a":[1,2)",
     R::kMalformedJson, "", {"malformed JSON"}},
    {"trailing garbage", full + " x", R::kMalformedJson, "", {"malformed JSON"}},
    {"second object", full + "{}", R::kMalformedJson, "",
     {"malformed JSON", "at byte " + std::to_string(kFull.size())}},
    {"extra closing brace", full + "}", R::kMalformedJson, "", {"malformed JSON"}},
    {"array at top level", "[" + full + "]", R::kNotAnObject, "", {"object"}},
    {"string at top level", R"("SMS")", R::kNotAnObject, "", {"object"}},
    {"number at top level", "42", R::kNotAnObject, "", {"object"}},
    {"null at top level", "null", R::kNotAnObject, "", {"object"}},
    {"missing channel", R"({"event":"DELIVERY","payload":{}})",
     R::kMissingField, "channel", {"missing", "\"channel\""}},
    {"missing event", R"({"channel":"SMS","payload":{}})",
     R::kMissingField, "event", {"missing", "\"event\""}},
    {"missing payload", R"({"channel":"SMS","event":"DELIVERY","eventId":"e"})",
     R::kMissingField, "payload", {"missing", "\"payload\""}},
    {"empty object", "{}", R::kMissingField, "channel", {"\"channel\""}},
    {"channel a number", R"({"channel":7,"event":"DELIVERY","payload":{}})",
     R::kWrongType, "channel", {"\"channel\"", "string"}},
    {"channel null", R"({"channel":null,"event":"DELIVERY","payload":{}})",
     R::kWrongType, "channel", {"\"channel\"", "string"}},
    {"event an array", R"({"channel":"SMS","event":["DELIVERY"],"payload":{}})",
     R::kWrongType, "event", {"\"event\"", "string"}},
    {"user an object", WithField("user", "{}"), R::kWrongType, "user", {"\"user\""}},
    {"eventId a number", WithField("eventId", "1"), R::kWrongType, "eventId", {"\"eventId\""}},
    {"payload a string", Envelope(R"("{}")"),
     R::kWrongType, "payload", {"\"payload\"", "object or an array"}},
    {"payload a number", Envelope("1"), R::kWrongType, "payload", {"\"payload\""}},
    {"payload null", Envelope("null"), R::kWrongType, "payload", {"\"payload\""}},
    {"invalid UTF-8 in a value", WithField("user", "\"\xff\""), R::kInvalidUtf8, "", {"UTF-8"}},
    {"invalid UTF-8 in a key", Envelope("{}", "\"\xc3\x28\":1,"), R::kInvalidUtf8, "", {"UTF-8"}},
    {"overlong UTF-8 in the payload", Envelope("{\"a\":\"\xc0\xaf\"}"),
     R::kInvalidUtf8, "", {"UTF-8"}},
    {"UTF-16 surrogate in the payload", Envelope("{\"a\":\"\xed\xa0\x80\"}"),
     R::kInvalidUtf8, "", {"UTF-8"}},
    {"truncated UTF-8 sequence", WithField("resource", "\"\xe3\x81\""),
     R::kInvalidUtf8, "", {"UTF-8"}},
    {"too deep payload", Envelope(Nested(65)), R::kTooDeep, "payload", {"nested"}},
    {"too deep unknown field", WithField("extra", Nested(65)), R::kTooDeep, "", {"nested"}},
    {"eventId with a space", WithField("eventId", R"("e 1")"),
     R::kInvalidEventId, "eventId", {"eventId"}},
    {"empty eventId", WithField("eventId", R"("")"), R::kInvalidEventId, "eventId", {"eventId"}},
    {"eventId with an escaped tab", WithField("eventId", R"("e\t1")"),
     R::kInvalidEventId, "eventId", {"eventId"}},
    {"eventId with DEL", WithField("eventId", R"("e\u007f")"),
     R::kInvalidEventId, "eventId", {"eventId"}},
    {"eventId not ASCII", WithField("eventId", R"("é")"),
     R::kInvalidEventId, "eventId", {"eventId"}},
  };
  // clang-format on
  for (const char* field :
       {"channel", "event", "eventId", "applicationId", "entityId", "resource", "user", "key"}) {
    cases.push_back({"256-byte key",
                     WithField(field, long_value),
                     R::kKeyTooLong,
                     field,
                     {std::string("\"") + field + "\"", "255"}});
  }
  // Malformed JSON inside the payload or an unknown field: the payload is forwarded verbatim and
  // an unknown field is skipped, so both must be valid JSON.
  for (const char* bad : {R"({"a":[1,,2]})", R"({"a":tru})", R"({"a":01})", R"({"a":1.})",
                          R"({"a":-})", R"({"a":.5})", R"({"a":+1})", R"({"a":1e})", R"({"a":nul})",
                          R"({"a":truex})", R"({"a":NaN})", R"({"a" 1})", R"({"a":1,})", R"([1 2])",
                          R"([1,])", R"({1:2})", R"({"a":"\x"})", R"({"a":[1}})"}) {
    cases.push_back({"malformed payload",
                     Envelope(bad),
                     R::kMalformedJson,
                     "payload",
                     {"malformed JSON", "\"payload\""}});
    cases.push_back({"malformed unknown field",
                     WithField("extra", bad),
                     R::kMalformedJson,
                     "",
                     {"malformed JSON"}});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Envelope, BadEnvelope, testing::ValuesIn(BadEvents()));

// ParseOutcome::offset is "the byte offset of the problem within the event".
TEST_F(EnvelopeParserTest, MalformedJsonReportsTheOffsetOfTheProblem) {
  const std::string second_object = std::string(kFull) + "{}";
  ParseOutcome outcome = Parse(second_object);
  ASSERT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.offset, kFull.size());

  // Garbage after the object unbalances the document as simdjson's stage 1 sees it, so it is
  // reported past the object (at the end), never at byte 0, and the message says what to check.
  const std::string trailing = std::string(kFull) + "  garbage";
  outcome = Parse(trailing);
  ASSERT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.reason, RejectReason::kMalformedJson);
  EXPECT_GT(outcome.offset, kFull.size()) << EnvelopeParser::Describe(outcome, view_);
  EXPECT_LE(outcome.offset, trailing.size());
  EXPECT_NE(EnvelopeParser::Describe(outcome, view_).find("content after its end"),
            std::string::npos);

  // A document that ends early has its problem at its end.
  const std::string truncated(kFull.substr(0, kFull.size() - 1));
  outcome = Parse(truncated);
  ASSERT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.reason, RejectReason::kMalformedJson);
  EXPECT_EQ(outcome.offset, truncated.size()) << EnvelopeParser::Describe(outcome, view_);

  const std::string in_payload = Envelope(R"({"a":[1,,2]})");
  outcome = Parse(in_payload);
  ASSERT_FALSE(outcome.ok);
  EXPECT_GE(outcome.offset, in_payload.find(R"({"a")"));
  EXPECT_LT(outcome.offset, in_payload.size());

  const std::string in_envelope = R"({"channel":"SMS",,"event":"DELIVERY","payload":{}})";
  outcome = Parse(in_envelope);
  ASSERT_FALSE(outcome.ok);
  EXPECT_GE(outcome.offset, in_envelope.find(",,"));
  EXPECT_LT(outcome.offset, in_envelope.find("DELIVERY"));
}

// Every proper prefix of a good envelope is refused as malformed, also when the bytes after the
// prefix (inside the padding) would complete the document.
TEST_F(EnvelopeParserTest, EveryTruncationIsMalformed) {
  for (const bool rest_in_padding : {false, true}) {
    for (size_t len = 0; len < kFull.size(); ++len) {
      SCOPED_TRACE(testing::Message() << "prefix " << len << (rest_in_padding ? " + rest" : ""));
      PaddedInput input(rest_in_padding ? kFull : kFull.substr(0, len));
      EventView view;
      const ParseOutcome outcome = parser_.Parse(input.data(), len, input.capacity(), &view);
      ASSERT_FALSE(outcome.ok) << kFull.substr(0, len);
      EXPECT_EQ(outcome.reason, RejectReason::kMalformedJson)
          << kFull.substr(0, len) << " → " << RejectReasonName(outcome.reason);
      EXPECT_LE(outcome.offset, len);
    }
  }
  ExpectParsesGoodEvent(parser_);
}

TEST_F(EnvelopeParserTest, OversizeEventsAreRejected) {
  EnvelopeParser parser(ParserLimits{.max_event_bytes = 100});
  std::string exact = Envelope(R"({"k":""})");
  exact.insert(exact.size() - 3, 100 - exact.size(), 'x');
  ASSERT_EQ(exact.size(), 100u);
  ParseOutcome outcome = Parse(parser, exact);
  ASSERT_TRUE(outcome.ok) << EnvelopeParser::Describe(outcome, view_);

  std::string over = exact;
  over.insert(over.size() - 3, "x");
  outcome = Parse(parser, over);
  ASSERT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.reason, RejectReason::kOversize);
  EXPECT_TRUE(Mentions(EnvelopeParser::Describe(outcome, view_), "max_event_bytes"));

  outcome = Parse(parser, std::string(kFull) + std::string(1000, ' '));
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.reason, RejectReason::kOversize);

  // A small good event still goes through the same parser.
  outcome = Parse(parser, Envelope("[]"));
  ASSERT_TRUE(outcome.ok) << EnvelopeParser::Describe(outcome, view_);
  EXPECT_EQ(view_.payload, "[]");
}

TEST_F(EnvelopeParserTest, PayloadDepthLimitIsInclusive) {
  // Payloads of exactly 64 levels (the default limit), whatever the innermost value, then 65.
  // An empty innermost container is not counted (simdjson's rule), so it may add one level.
  const std::string object = R"({"k":"v"})";
  for (const std::string& ok : {Nested(64), Nested(64, ""), Nested(63, object), Nested(65, "")}) {
    const ParseOutcome outcome = Parse(Envelope(ok));
    EXPECT_TRUE(outcome.ok) << ok << ": " << EnvelopeParser::Describe(outcome, view_);
    EXPECT_EQ(view_.payload, ok);
  }
  for (const std::string& deep : {Nested(65), Nested(66, ""), Nested(64, object)}) {
    const ParseOutcome outcome = Parse(Envelope(deep));
    EXPECT_FALSE(outcome.ok) << deep;
    EXPECT_EQ(outcome.reason, RejectReason::kTooDeep) << deep;
  }

  EnvelopeParser shallow(ParserLimits{.max_payload_depth = 3});
  ParseOutcome outcome = Parse(shallow, Envelope(R"({"a":{"b":[1]}})"));
  EXPECT_TRUE(outcome.ok) << EnvelopeParser::Describe(outcome, view_);
  outcome = Parse(shallow, Envelope(R"({"a":{"b":[[1]]}})"));
  ASSERT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.reason, RejectReason::kTooDeep);
  outcome = Parse(shallow, Envelope("[]", R"("x":[[[{"a":1}]]],)"));
  ASSERT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.reason, RejectReason::kTooDeep);
  ExpectParsesGoodEvent(shallow);
}

TEST_F(EnvelopeParserTest, ParserSurvivesAStreamOfMixedEvents) {
  const std::vector<BadEvent> bad = BadEvents();
  for (int round = 0; round < 3; ++round) {
    for (const BadEvent& c : bad) {
      EXPECT_FALSE(Parse(c.json).ok) << c.what;
      const ParseOutcome outcome = Parse(Envelope(R"({"round":)" + std::to_string(round) + "}"));
      ASSERT_TRUE(outcome.ok) << "after " << c.what;
      EXPECT_EQ(view_.payload, R"({"round":)" + std::to_string(round) + "}");
    }
  }
}

// The parser tells every kind of failure apart: all reasons but the two the catalog decides.
TEST_F(EnvelopeParserTest, ProducesEveryParserRejectReason) {
  std::set<RejectReason> seen;
  for (const BadEvent& c : BadEvents()) {
    const ParseOutcome outcome = Parse(c.json);
    if (!outcome.ok) seen.insert(outcome.reason);
  }
  EnvelopeParser small(ParserLimits{.max_event_bytes = 100});
  const ParseOutcome oversize = Parse(small, std::string(kFull));
  if (!oversize.ok) seen.insert(oversize.reason);

  std::set<RejectReason> expected;
  for (int i = 0; i < kRejectReasonCount; ++i) expected.insert(static_cast<RejectReason>(i));
  expected.erase(RejectReason::kUnknownChannel);
  expected.erase(RejectReason::kUnknownEvent);
  EXPECT_EQ(seen, expected);
}

// --- Describe(), names, numbers ---

TEST(Describe, NamesTheValuesOfCatalogRejections) {
  EventView view;
  view.channel = "SMX";
  view.event = "OPEN";
  ParseOutcome outcome;
  outcome.ok = false;
  outcome.reason = RejectReason::kUnknownChannel;
  EXPECT_EQ(EnvelopeParser::Describe(outcome, view), R"(unknown channel "SMX")");
  view.channel = "SMS";
  outcome.reason = RejectReason::kUnknownEvent;
  const std::string message = EnvelopeParser::Describe(outcome, view);
  EXPECT_TRUE(Mentions(message, "\"OPEN\""));
  EXPECT_TRUE(Mentions(message, "SMS"));
}

TEST(Describe, GivesEveryReasonItsOwnMessage) {
  EventView view;
  view.channel = "SMX";
  view.event = "X";
  std::set<std::string> messages;
  for (int i = 0; i < kRejectReasonCount; ++i) {
    ParseOutcome outcome;
    outcome.ok = false;
    outcome.reason = static_cast<RejectReason>(i);
    outcome.field = "user";
    const std::string message = EnvelopeParser::Describe(outcome, view);
    EXPECT_FALSE(message.empty());
    EXPECT_NE(message, "rejected") << RejectReasonName(outcome.reason);
    EXPECT_TRUE(messages.insert(message).second) << "repeated: " << message;
  }
}

TEST(RejectReasonName, IsDistinctSnakeCaseForEveryReason) {
  std::set<std::string_view> names;
  for (int i = 0; i < kRejectReasonCount; ++i) {
    const std::string_view name = RejectReasonName(static_cast<RejectReason>(i));
    EXPECT_FALSE(name.empty()) << i;
    for (char c : name) {
      EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_') << name;
    }
    EXPECT_TRUE(names.insert(name).second) << "repeated: " << name;
  }
  EXPECT_EQ(RejectReasonName(RejectReason::kMalformedJson), "malformed_json");
  EXPECT_EQ(RejectReasonName(RejectReason::kInvalidEventId), "invalid_event_id");
  EXPECT_EQ(static_cast<int>(RejectReason::kInvalidEventId), kRejectReasonCount - 1);
}

TEST(IsJsonNumber, AcceptsTheRfc8259Grammar) {
  for (std::string_view s :
       {"0", "-0", "7", "123", "-45", "1.5", "0.0", "-0.25", "1e5", "1E5", "1e+5", "1e-5",
        "-1.5e-10", "0e0", "9007199254740993", "123456789012345678901234567890"}) {
    EXPECT_TRUE(IsJsonNumber(s)) << s;
  }
}

TEST(IsJsonNumber, RejectsEverythingElse) {
  for (std::string_view s :
       {"",         "-",         "+1",  "01",  "-01",  "00",    "1.",  ".5",   "-.5",
        "1.e5",     "1e",        "1e+", "1e-", "1ee5", "1.5.5", "--1", "0x10", "NaN",
        "Infinity", "-Infinity", " 1",  "1 ",  "1,",   "1a",    "١"}) {
    EXPECT_FALSE(IsJsonNumber(s)) << "\"" << s << "\"";
  }
}

}  // namespace
}  // namespace herald::parse
