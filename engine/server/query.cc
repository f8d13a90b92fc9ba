#include "engine/server/query.h"

#include <charconv>

#include "engine/common/json_writer.h"
#include "engine/common/strings.h"
#include "herald/status.h"

namespace herald::server {
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexDigit(s[i + 1]) >= 0 && HexDigit(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexDigit(s[i + 1]) * 16 + HexDigit(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i] == '+' ? ' ' : s[i]);
    }
  }
  return out;
}

Query ParseQuery(std::string_view q) {
  Query out;
  while (!q.empty()) {
    const size_t amp = q.find('&');
    const std::string_view part = q.substr(0, amp);
    if (!part.empty()) {
      const size_t eq = part.find('=');
      out.emplace(PercentDecode(part.substr(0, eq)),
                  eq == std::string_view::npos ? "" : PercentDecode(part.substr(eq + 1)));
    }
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return out;
}

std::vector<std::string> Values(const Query& query, std::string_view key) {
  std::vector<std::string> v;
  for (auto [it, end] = query.equal_range(std::string(key)); it != end; ++it) {
    v.push_back(it->second);
  }
  return v;
}

std::string Value(const Query& query, std::string_view key) {
  const auto it = query.find(std::string(key));
  return it == query.end() ? "" : it->second;
}

absl::StatusOr<Paging> ParsePaging(const Query& query) {
  Paging paging;
  auto read = [&](const char* key, size_t* out, size_t min, size_t max) -> absl::Status {
    const auto it = query.find(key);
    if (it == query.end()) return absl::OkStatus();
    const std::string& text = it->second;
    size_t v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v < min ||
        v > max) {
      return ValidationError({{key, {Cat("must be an integer between ", min, " and ", max)}}});
    }
    *out = v;
    return absl::OkStatus();
  };
  if (auto s = read("page", &paging.page, 0, 1'000'000'000); !s.ok()) return s;
  if (auto s = read("size", &paging.size, 1, 100); !s.ok()) return s;
  return paging;
}

std::string PageBody(const std::vector<std::string>& results, Paging paging, size_t total) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject().Key("results").BeginArray();
  for (const std::string& r : results) w.Raw(r);
  w.EndArray().Key("paging").BeginObject();
  w.Field("page", uint64_t{paging.page}).Field("size", uint64_t{paging.size});
  w.Field("totalPages", uint64_t{(total + paging.size - 1) / paging.size});
  w.Field("totalResults", uint64_t{total});
  w.EndObject().EndObject();
  return out;
}

}  // namespace herald::server
