// String helpers. Debian's Abseil keeps its own absl::string_view (not std::string_view), so
// absl::StrCat does not take std::string_view; Cat() concatenates the types herald actually uses.
#pragma once

#include <string>
#include <string_view>
#include <type_traits>

#include "absl/strings/string_view.h"

namespace herald {

inline absl::string_view ToAbsl(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}
inline std::string_view ToStd(absl::string_view s) { return std::string_view(s.data(), s.size()); }

namespace strings_internal {
inline void Append(std::string& out, std::string_view s) { out.append(s); }
inline void Append(std::string& out, const char* s) { out.append(s); }
inline void Append(std::string& out, const std::string& s) { out.append(s); }
inline void Append(std::string& out, absl::string_view s) { out.append(s.data(), s.size()); }
inline void Append(std::string& out, char c) { out.push_back(c); }
template <typename T>
requires(std::is_arithmetic_v<T> && !std::is_same_v<T, char> &&
         !std::is_same_v<T, bool>) inline void Append(std::string& out, T v) {
  out.append(std::to_string(v));
}
}  // namespace strings_internal

template <typename... T>
std::string Cat(const T&... parts) {
  std::string out;
  (strings_internal::Append(out, parts), ...);
  return out;
}

}  // namespace herald
