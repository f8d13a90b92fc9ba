// How the HTTP API answers: JSON bodies, and errors in the platform's envelope
// ({"requestError":{"serviceException":{"messageId","text","validationErrors"}}}) with the status
// each absl code stands for.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "engine/server/http_server.h"
#include "herald/status.h"

namespace herald::server {

void Json(HttpResponse& r, int status, std::string body);
void Error(HttpResponse& r, int status, std::string_view message_id, std::string_view text,
           const ValidationErrors& errors = {});
// InvalidArgument → 400 with the field errors, NotFound → 404, AlreadyExists and
// FailedPrecondition → 409, ResourceExhausted → 403 (a limit), Unavailable → 503 with
// Retry-After (the store refused a change, which was undone), anything else → 500.
void FromStatus(HttpResponse& r, const absl::Status& s);
// {"<key>":"<id>"}
std::string IdBody(std::string_view key, std::string_view id);

}  // namespace herald::server
