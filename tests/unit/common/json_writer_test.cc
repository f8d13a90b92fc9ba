#include "engine/common/json_writer.h"

#include <simdjson.h>

#include <cmath>
#include <random>

#include "gtest/gtest.h"

namespace herald {
namespace {

std::string Quoted(std::string_view s) {
  std::string out;
  AppendJsonString(out, s);
  return out;
}

// What simdjson reads back from a JSON string; fails the test when it cannot parse it.
std::string ReadBack(const std::string& json) {
  simdjson::dom::parser parser;
  std::string_view v;
  EXPECT_EQ(parser.parse(json).get_string().get(v), simdjson::SUCCESS) << json;
  return std::string(v);
}

TEST(JsonString, EscapesWhatJsonReservesAndKeepsUtf8) {
  EXPECT_EQ(Quoted("a\"b\\c\n\r\t\x01"), R"("a\"b\\c\n\r\t\u0001")");
  EXPECT_EQ(Quoted("日本語 ✓ 😀"), "\"日本語 ✓ 😀\"");
  EXPECT_EQ(ReadBack(Quoted("x\x1fy")), "x\x1fy");
}

TEST(JsonString, BytesThatAreNotUtf8BecomeReplacementCharacters) {
  const std::string fffd = "\xEF\xBF\xBD";
  struct Case {
    std::string in, out;
  } cases[] = {
      {"\xff", fffd},                                            // never in UTF-8
      {"a\x80z", "a" + fffd + "z"},                              // a lone continuation byte
      {"\xc3", fffd},                                            // cut short at the end
      {"\xe2\x82z", fffd + fffd + "z"},                          // cut short before an ASCII byte
      {"\xc0\x80", fffd + fffd},                                 // overlong NUL
      {"\xed\xa0\x80", fffd + fffd + fffd},                      // a UTF-16 surrogate
      {"\xf4\x90\x80\x80", fffd + fffd + fffd + fffd},           // past U+10FFFF
      {"ok \xc3\xa9 \xff \xe2\x9c\x93", "ok é " + fffd + " ✓"},  // the valid parts stay
  };
  for (const auto& c : cases) {
    const std::string json = Quoted(c.in);
    EXPECT_EQ(ReadBack(json), c.out) << json;
  }
}

TEST(JsonString, AnyBytesGiveJsonThatParsesAndValidUtf8RoundTrips) {
  std::mt19937 rng(7);
  for (int i = 0; i < 20'000; ++i) {
    std::string in(rng() % 12, '\0');
    for (auto& c : in) c = static_cast<char>(rng() % 4 == 0 ? rng() % 0x80 : rng() % 0x100);
    const std::string back = ReadBack(Quoted(in));
    if (simdjson::validate_utf8(in.data(), in.size())) {
      EXPECT_EQ(back, in);
    }
  }
}

TEST(JsonWriter, PlacesCommasInNestedObjectsAndArrays) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject().Field("a", 1).Key("b").BeginArray().Int(-2).Uint(3).BeginObject().EndObject();
  w.BeginArray().EndArray().EndArray();
  w.Field("c", true).Key("d").Null().Field("e", 0.5).Field("f", std::nan(""));
  w.Strings("g", {"x", "y"}).RawField("h", R"({"raw":[1]})").Field("i", "s").EndObject();
  EXPECT_EQ(out, R"({"a":1,"b":[-2,3,{},[]],"c":true,"d":null,"e":0.5,"f":null,"g":["x","y"],)"
                 R"("h":{"raw":[1]},"i":"s"})");
  simdjson::dom::parser parser;
  EXPECT_EQ(parser.parse(out).error(), simdjson::SUCCESS);
}

}  // namespace
}  // namespace herald
