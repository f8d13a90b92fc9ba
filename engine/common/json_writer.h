// The one way herald writes JSON: API bodies, errors, the config journal, dead letters. Strings
// are escaped and always come out as valid UTF-8 (simdjson checks them; a byte sequence that is
// not UTF-8, such as raw bytes of a request path, becomes U+FFFD), so a reader never gets JSON
// it cannot parse. Decoding stays on simdjson.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace herald {

// `s` as a JSON string, quotes included, appended to `out`.
void AppendJsonString(std::string& out, std::string_view s);

// Appends to a string, placing the commas: values follow a Key() inside objects and stand alone
// inside arrays. Not a validator of its own use: an unbalanced Begin/End is a bug of the caller.
class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  JsonWriter& BeginObject() { return Open('{'); }
  JsonWriter& EndObject() { return Close('}'); }
  JsonWriter& BeginArray() { return Open('['); }
  JsonWriter& EndArray() { return Close(']'); }
  JsonWriter& Key(std::string_view key);

  JsonWriter& String(std::string_view v);
  JsonWriter& Int(int64_t v);
  JsonWriter& Uint(uint64_t v);
  JsonWriter& Double(double v);
  JsonWriter& Bool(bool v);
  JsonWriter& Null();
  // JSON produced elsewhere and known to be valid (a payload validated at ingest).
  JsonWriter& Raw(std::string_view json);

  // Key(key) then the value.
  JsonWriter& Field(std::string_view key, std::string_view v) { return Key(key).String(v); }
  JsonWriter& Field(std::string_view key, const char* v) { return Key(key).String(v); }
  JsonWriter& Field(std::string_view key, const std::string& v) { return Key(key).String(v); }
  JsonWriter& Field(std::string_view key, bool v) { return Key(key).Bool(v); }
  JsonWriter& Field(std::string_view key, int v) { return Key(key).Int(v); }
  JsonWriter& Field(std::string_view key, int64_t v) { return Key(key).Int(v); }
  JsonWriter& Field(std::string_view key, uint64_t v) { return Key(key).Uint(v); }
  JsonWriter& Field(std::string_view key, double v) { return Key(key).Double(v); }
  JsonWriter& RawField(std::string_view key, std::string_view json) { return Key(key).Raw(json); }
  JsonWriter& Strings(std::string_view key, const std::vector<std::string>& v);

 private:
  JsonWriter& Open(char c);
  JsonWriter& Close(char c);
  void Separate();  // a comma before a value or key that is not the first of its container

  std::string& out_;
  std::vector<bool> first_;  // per open container: nothing written in it yet
  bool after_key_ = false;
};

}  // namespace herald
