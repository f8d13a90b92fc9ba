#include "tools/heraldctl/cli.h"

#include <cctype>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "engine/common/json_writer.h"
#include "tools/heraldctl/contexts.h"

namespace heraldctl {

std::unique_ptr<Client> Globals::client() const {
  return std::make_unique<Client>(Resolve(url, api_key, context), trace);
}

std::string ReadData(const std::string& data) {
  if (data == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  if (data.starts_with("@")) {
    std::ifstream in(data.substr(1), std::ios::binary);
    if (!in) throw Failure(kUsage, "cannot read " + data.substr(1));
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return data;
}

std::vector<std::pair<std::string, std::string>> ObjectFields(const std::string& text,
                                                              const std::string& what) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  simdjson::dom::object object;
  if (parser.parse(text).get(root) != simdjson::SUCCESS ||
      root.get_object().get(object) != simdjson::SUCCESS) {
    throw Failure(kUsage, what + " must be a JSON object");
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (auto [key, value] : object) out.emplace_back(std::string(key), simdjson::minify(value));
  return out;
}

std::string JoinObject(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out;
  herald::JsonWriter w(out);
  w.BeginObject();
  for (const auto& [k, v] : fields) w.RawField(k, v);
  w.EndObject();
  return out;
}

void ApplySet(std::vector<std::pair<std::string, std::string>>& fields, const std::string& set) {
  const size_t eq = set.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw Failure(kUsage, "--set takes field=value, not \"" + set + "\"");
  }
  const std::string key = set.substr(0, eq), value = set.substr(eq + 1);
  simdjson::dom::parser parser;
  simdjson::dom::element parsed;
  std::string json;
  if (parser.parse(value).get(parsed) == simdjson::SUCCESS) {
    json = simdjson::minify(parsed);
  } else {
    herald::AppendJsonString(json, value);
  }
  for (auto& [k, v] : fields) {
    if (k == key) {
      v = json;
      return;
    }
  }
  fields.emplace_back(key, json);
}

namespace {
void PrettyInto(std::string& out, simdjson::dom::element e, int depth) {
  const std::string pad(2 * (depth + 1), ' '), end(2 * depth, ' ');
  if (e.is_object()) {
    simdjson::dom::object o = e.get_object().value_unsafe();
    if (o.size() == 0) {
      out += "{}";
      return;
    }
    out += "{\n";
    bool first = true;
    for (auto [k, v] : o) {
      if (!first) out += ",\n";
      first = false;
      out += pad;
      herald::AppendJsonString(out, k);
      out += ": ";
      PrettyInto(out, v, depth + 1);
    }
    out += "\n" + end + "}";
  } else if (e.is_array()) {
    simdjson::dom::array a = e.get_array().value_unsafe();
    if (a.size() == 0) {
      out += "[]";
      return;
    }
    out += "[\n";
    bool first = true;
    for (auto v : a) {
      if (!first) out += ",\n";
      first = false;
      out += pad;
      PrettyInto(out, v, depth + 1);
    }
    out += "\n" + end + "]";
  } else {
    out += simdjson::minify(e);
  }
}
}  // namespace

std::string Pretty(const std::string& json) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json).get(root) != simdjson::SUCCESS) return json;
  std::string out;
  PrettyInto(out, root, 0);
  return out;
}

void PrintJson(const Output& out, const std::string& json) {
  std::cout << (out.table() ? Pretty(json) : json) << "\n";
}

std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(ch);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

simdjson::dom::array ArrayOf(simdjson::dom::element e, std::string_view key) {
  simdjson::dom::array a;
  if (e[key].get_array().get(a) != simdjson::SUCCESS) {
    throw Failure(kServerError, "heraldd's answer has no " + std::string(key) + " list");
  }
  return a;
}

std::string Str(simdjson::dom::element e, std::string_view key) {
  std::string_view v;
  if (e[key].get_string().get(v) == simdjson::SUCCESS) return std::string(v);
  return "";
}

int64_t Int(simdjson::dom::element e, std::string_view key, int64_t missing) {
  int64_t v;
  if (e[key].get_int64().get(v) == simdjson::SUCCESS) return v;
  return missing;
}

double Num(simdjson::dom::element e, std::string_view key, double missing) {
  double v;
  if (e[key].get_double().get(v) == simdjson::SUCCESS) return v;
  return missing;
}

bool Bool(simdjson::dom::element e, std::string_view key) {
  bool v = false;
  return e[key].get_bool().get(v) == simdjson::SUCCESS && v;
}

std::string EventName(simdjson::dom::element entry) {
  std::string_view name;
  if (entry.get_string().get(name) == simdjson::SUCCESS) return std::string(name);
  return Str(entry, "event");
}

std::string JoinStrings(simdjson::dom::element e, std::string_view key) {
  simdjson::dom::array a;
  if (e[key].get_array().get(a) != simdjson::SUCCESS) return "";
  std::string out;
  for (auto v : a) {
    std::string_view s;
    if (v.get_string().get(s) != simdjson::SUCCESS) continue;
    out += (out.empty() ? "" : ",") + std::string(s);
  }
  return out;
}

}  // namespace heraldctl
