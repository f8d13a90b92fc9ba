#include "engine/server/http_reply.h"

#include "engine/common/json_writer.h"
#include "engine/common/strings.h"

namespace herald::server {

void Json(HttpResponse& r, int status, std::string body) {
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
}

void Error(HttpResponse& r, int status, std::string_view message_id, std::string_view text,
           const ValidationErrors& errors) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject().Key("requestError").BeginObject().Key("serviceException").BeginObject();
  w.Field("messageId", message_id).Field("text", text);
  if (!errors.empty()) {
    w.Key("validationErrors").BeginObject();
    for (const auto& [field, messages] : errors) w.Strings(field, messages);
    w.EndObject();
  }
  w.EndObject().EndObject().EndObject();
  Json(r, status, std::move(out));
}

void FromStatus(HttpResponse& r, const absl::Status& s) {
  const std::string text(ToStd(s.message()));
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
      return Error(r, 400, "BAD_REQUEST", text, ValidationErrorsOf(s));
    case absl::StatusCode::kNotFound:
      return Error(r, 404, "NOT_FOUND", text);
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
      return Error(r, 409, "CONFLICT", text);
    case absl::StatusCode::kResourceExhausted:
      return Error(r, 403, "LIMIT_EXCEEDED", text);
    case absl::StatusCode::kAborted:  // If-Match named another revision
      return Error(r, 412, "PRECONDITION_FAILED", text);
    case absl::StatusCode::kUnavailable:
      r.headers.emplace_back("Retry-After", "5");
      return Error(r, 503, "SERVICE_UNAVAILABLE", text);
    default:
      return Error(r, 500, "INTERNAL_SERVER_ERROR", text);
  }
}

std::string IdBody(std::string_view key, std::string_view id) {
  std::string out;
  JsonWriter(out).BeginObject().Field(key, id).EndObject();
  return out;
}

}  // namespace herald::server
