// Field errors travel inside an absl::Status as a payload, so the control plane keeps one error
// type and the daemon can still render `validationErrors` per field.
#include "herald/status.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "engine/common/strings.h"

namespace herald {
namespace {
constexpr char kPayloadUrl[] = "type.herald/validation-errors";

// Field names and messages quote user input, so the payload escapes its separators.
std::string Escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\t')
      out += "\\t";
    else if (c == '\n')
      out += "\\n";
    else
      out.push_back(c);
  }
  return out;
}

std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      const char n = s[++i];
      out.push_back(n == 't' ? '\t' : n == 'n' ? '\n' : n);
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

absl::Status ValidationError(const ValidationErrors& errors) {
  std::string message, payload;
  for (const auto& [field, messages] : errors) {
    for (const auto& m : messages) {
      if (!message.empty()) message += "; ";
      message += Cat(field, ": ", m);
      payload += Cat(Escape(field), "\t", Escape(m), "\n");
    }
  }
  absl::Status status = absl::InvalidArgumentError(message);
  status.SetPayload(kPayloadUrl, absl::Cord(payload));
  return status;
}

ValidationErrors ValidationErrorsOf(const absl::Status& status) {
  ValidationErrors errors;
  auto payload = status.GetPayload(kPayloadUrl);
  if (!payload) return errors;
  for (absl::string_view line : absl::StrSplit(std::string(*payload), '\n', absl::SkipEmpty())) {
    const size_t tab = line.find('\t');
    if (tab == absl::string_view::npos) continue;
    errors[Unescape(ToStd(line.substr(0, tab)))].push_back(Unescape(ToStd(line.substr(tab + 1))));
  }
  return errors;
}

}  // namespace herald
