// POST /v1/events (envelopes: one JSON or NDJSON) and /v1/events/{channel}/{event} (a channel's
// own payload): 202 once the EventLog made the request durable.
#include <chrono>

#include "engine/common/json_writer.h"
#include "engine/common/mutex.h"
#include "engine/common/strings.h"
#include "engine/server/http_api.h"
#include "engine/server/http_reply.h"

namespace herald::server {
namespace {

// An ingest answer that waits for its request to be durable (durability "always") without
// holding the io thread: whichever comes second — durability or the server asking — sends it.
class DurableAnswer {
 public:
  store::EventLog::OnDurable OnDurable(const std::shared_ptr<DurableAnswer>& self) {
    return [self](absl::Status s) {
      HttpResponse::Resume resume;
      {
        MutexLock lock(self->mu_);
        self->done_ = true;
        self->status_ = std::move(s);
        resume = std::move(self->resume_);
      }
      if (resume) Send(resume, self->status_);
    };
  }
  std::function<void(HttpResponse::Resume)> Wait(const std::shared_ptr<DurableAnswer>& self) {
    return [self](HttpResponse::Resume resume) {
      {
        MutexLock lock(self->mu_);
        if (!self->done_) {
          self->resume_ = std::move(resume);
          return;
        }
      }
      Send(resume, self->status_);
    };
  }

 private:
  static void Send(const HttpResponse::Resume& resume, const absl::Status& s) {
    if (s.ok()) return resume(nullptr);
    HttpResponse failed;
    Error(failed, 503, "SERVICE_UNAVAILABLE",
          Cat("the events were written but could not be made durable (", ToStd(s.message()),
              "); send them again"));
    failed.headers.emplace_back("Retry-After", "5");
    resume(&failed);
  }

  Mutex mu_;
  bool done_ HERALD_GUARDED_BY(mu_) = false;
  absl::Status status_;  // set once, before done_
  HttpResponse::Resume resume_ HERALD_GUARDED_BY(mu_);
};

// The refusal of a lone event, with its reason.
void Refused(HttpResponse& response, const IngestError& error) {
  if (error.reason == RejectReason::kOversize) {
    return Error(response, 413, "PAYLOAD_TOO_LARGE", error.message);
  }
  Error(response, 400, "BAD_REQUEST", error.message);
}

}  // namespace

void HttpApi::IngestEnvelopes(Call& call) { Ingest(call, {}, {}); }

void HttpApi::IngestNative(Call& call) { Ingest(call, call.params[0], call.params[1]); }

void HttpApi::Ingest(Call& call, std::string_view channel, std::string_view event) {
  HttpRequest& request = call.request;
  HttpResponse& response = call.response;
  const bool native = !channel.empty();
  // The body arrives in an ingest buffer (see CheckHeaders) or, from other callers, as a string.
  const std::string_view input =
      request.ingest_body ? std::string_view(request.ingest_body.data(), request.ingest_size)
                          : std::string_view(request.body);
  const std::string_view type =
      std::string_view(request.content_type).substr(0, request.content_type.find(';'));
  InputFormat format;
  if (type == "application/x-ndjson") {
    format = InputFormat::kNdjson;
  } else if (type == "application/json" || type.empty()) {
    format = InputFormat::kSingle;
  } else {
    return Error(response, 415, "UNSUPPORTED_MEDIA_TYPE",
                 "use Content-Type: application/json (one event) or application/x-ndjson");
  }
  if (native) {
    const int ch = engine_.catalog().FindChannel(channel);
    if (ch < 0 || engine_.catalog().FindEvent(ch, event) < 0) {
      return Error(response, 404, "NOT_FOUND",
                   Cat("unknown channel or event: ", channel, "/", event));
    }
    if (format != InputFormat::kSingle) {
      return Error(response, 415, "UNSUPPORTED_MEDIA_TYPE", "native payloads are application/json");
    }
  }
  std::vector<IngestError> errors;
  absl::StatusOr<IngestResult> routed;
  std::shared_ptr<DurableAnswer> durable;
  store::EventLog::OnDurable on_durable;
  if (events_ && events_->defers_durability()) {
    durable = std::make_shared<DurableAnswer>();
    on_durable = durable->OnDurable(durable);
  }
  const auto start = std::chrono::steady_clock::now();
  if (native) {
    routed = events_ ? events_->IngestNative(channel, event, input, &errors, std::move(on_durable))
                     : engine_.IngestNative(channel, event, input, &errors);
  } else if (events_) {
    routed = request.ingest_body
                 ? events_->Ingest(std::move(request.ingest_body), request.ingest_size, format,
                                   &errors, std::move(on_durable))
                 : events_->Ingest(input, format, &errors, std::move(on_durable));
  } else {
    routed = request.ingest_body ? engine_.Ingest(std::move(request.ingest_body),
                                                  request.ingest_size, format, &errors)
                                 : engine_.Ingest(input, format, &errors);
  }
  routing_latency_.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  if (!routed.ok()) {
    // The log refused it (disk full, I/O error): nothing was accepted; the client retries.
    response.headers.emplace_back("Retry-After", "5");
    return Error(response, 503, "SERVICE_UNAVAILABLE", ToStd(routed.status().message()));
  }
  const IngestResult& r = *routed;
  if (native && r.accepted == 0 && r.rejected == 1 && !errors.empty()) {
    return Refused(response, errors[0]);
  }
  if (!native && format == InputFormat::kSingle && r.rejected == 1 && !errors.empty()) {
    return Refused(response, errors[0]);
  }
  if (r.back_pressured > 0) {
    response.headers.emplace_back("Retry-After", "1");
    return Error(response, 503, "SERVICE_UNAVAILABLE",
                 Cat(r.back_pressured, " notification(s) refused: subscriber queues are full"));
  }
  std::string body;
  JsonWriter w(body);
  w.BeginObject().Field("accepted", uint64_t{r.accepted}).Field("rejected", uint64_t{r.rejected});
  w.Key("errors").BeginArray();
  for (const IngestError& e : errors) {
    w.BeginObject().Field("line", uint64_t{e.line}).Field("error", e.message).EndObject();
  }
  w.EndArray().EndObject();
  Json(response, 202, std::move(body));
  if (durable) response.wait = durable->Wait(durable);  // 202 once the fdatasync is done
}

}  // namespace herald::server
