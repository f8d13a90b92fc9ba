// What may be written into an HTTP/1.1 header (RFC 9110 §5.1, §5.5): one definition used where
// a profile is written (a 400 naming the field) and again just before a request goes on the wire,
// so nothing a user stored can split a header or smuggle another one in.
#pragma once

#include <string_view>

namespace herald {

// A field name: a non-empty RFC 9110 token.
inline bool IsHeaderName(std::string_view name) {
  if (name.empty()) return false;
  for (const char c : name) {
    const unsigned char u = static_cast<unsigned char>(c);
    const bool alnum = (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z');
    if (!alnum && std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

// A field value: visible characters, spaces and tabs (and bytes >= 0x80); never CR, LF, NUL or
// another control character.
inline bool IsHeaderValue(std::string_view value) {
  for (const char c : value) {
    const unsigned char u = static_cast<unsigned char>(c);
    if ((u < 0x20 && u != '\t') || u == 0x7f) return false;
  }
  return true;
}

inline bool EqualsLowercase(std::string_view s, std::string_view lower) {
  if (s.size() != lower.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i] >= 'A' && s[i] <= 'Z' ? static_cast<char>(s[i] - 'A' + 'a') : s[i];
    if (c != lower[i]) return false;
  }
  return true;
}

// Names herald writes itself (framing, hop-by-hop, the body's type, its webhook-* and x-herald-*
// headers): a profile may not set them.
inline bool IsReservedHeader(std::string_view name) {
  for (const std::string_view reserved :
       {"host", "content-length", "transfer-encoding", "connection", "content-type", "keep-alive",
        "upgrade", "te", "trailer", "proxy-connection"}) {
    if (EqualsLowercase(name, reserved)) return true;
  }
  for (const std::string_view prefix : {"webhook-", "x-herald-"}) {
    if (name.size() >= prefix.size() && EqualsLowercase(name.substr(0, prefix.size()), prefix)) {
      return true;
    }
  }
  return false;
}

}  // namespace herald
