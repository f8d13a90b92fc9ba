// Field errors travel inside an absl::Status as a payload, so the control plane keeps one error
// type and the daemon can still render `validationErrors` per field.
#include "engine/common/strings.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "herald/status.h"

namespace herald {
namespace {
constexpr char kPayloadUrl[] = "type.herald/validation-errors";
}

absl::Status ValidationError(const ValidationErrors& errors) {
  std::string message, payload;
  for (const auto& [field, messages] : errors) {
    for (const auto& m : messages) {
      if (!message.empty()) message += "; ";
      message += Cat(field, ": ", m);
      payload += Cat(field, "\t", m, "\n");
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
    errors[std::string(line.substr(0, tab))].emplace_back(line.substr(tab + 1));
  }
  return errors;
}

}  // namespace herald
