// Status conventions of the public API. Control-plane calls return absl::Status; the codes map
// onto the management API: InvalidArgument → 400 (field errors attached, see ValidationErrors),
// NotFound → 404, AlreadyExists and FailedPrecondition → 409.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace herald {

// Field name (as in the API's JSON, e.g. "events" or "webhook.notifyUrl") → messages.
using ValidationErrors = std::map<std::string, std::vector<std::string>>;

// An InvalidArgument status carrying `errors`; its message lists them all.
absl::Status ValidationError(const ValidationErrors& errors);

// The field errors attached to a status made by ValidationError(), or empty.
ValidationErrors ValidationErrorsOf(const absl::Status& status);

}  // namespace herald
