#include "engine/jetstream/stream_event_log.h"

#include <algorithm>

#include "engine/common/strings.h"
#include "simdjson.h"

namespace herald::jetstream {

namespace {

// Routes nothing: no profile has this id (ids are printable), so Ingest only validates.
constexpr std::string_view kValidateOnly = "\x01";

constexpr char kKindHeader[] = "Herald-Kind";
constexpr char kChannelHeader[] = "Herald-Channel";
constexpr char kEventHeader[] = "Herald-Event";

// The eventId of a request that is one envelope, or empty.
std::string EventIdOf(std::string_view bytes) {
  simdjson::ondemand::parser parser;
  const simdjson::padded_string padded(bytes);
  simdjson::ondemand::document doc;
  if (parser.iterate(padded).get(doc) != simdjson::SUCCESS) return {};
  std::string_view id;
  if (doc["eventId"].get_string().get(id) != simdjson::SUCCESS) return {};
  return std::string(id);
}

// The format an ingest request was given in, as a header, and back.
std::string_view KindOf(InputFormat format) {
  switch (format) {
    case InputFormat::kSingle:
      return "single";
    case InputFormat::kNdjson:
      return "ndjson";
    default:
      return "auto";
  }
}
InputFormat FormatOf(std::string_view kind) {
  if (kind == "single") return InputFormat::kSingle;
  if (kind == "ndjson") return InputFormat::kNdjson;
  return InputFormat::kAuto;
}

std::string_view Header(natsMsg* m, const char* key) {
  const char* value = nullptr;
  if (natsMsgHeader_Get(m, key, &value) != NATS_OK || value == nullptr) return {};
  return value;
}

}  // namespace

StreamEventLog::StreamEventLog(NatsClient& client, Engine& engine, Options options)
    : client_(client),
      engine_(engine),
      options_(options),
      stream_(client.Name("events")),
      consumer_(client.Name("route")),
      subject_(Cat(client.options().prefix, ".events")),
      instance_id_(RandomId()) {}

StreamEventLog::~StreamEventLog() {
  Stop();
  if (sub_ != nullptr) natsSubscription_Destroy(sub_);
  if (route_js_ != nullptr) jsCtx_Destroy(route_js_);
}

absl::StatusOr<std::unique_ptr<StreamEventLog>> StreamEventLog::Open(NatsClient& client,
                                                                     Engine& engine,
                                                                     Options options) {
  std::unique_ptr<StreamEventLog> log(new StreamEventLog(client, engine, options));
  if (absl::Status s = log->Bind(); !s.ok()) return s;
  return log;
}

absl::Status StreamEventLog::Bind() {
  if (absl::Status s = EnsureStream(
          client_,
          {.name = stream_,
           .subjects = subject_,
           .description = "herald: accepted ingest requests, until an instance routed them"});
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          EnsureConsumer(client_, {.stream = stream_,
                                   .name = consumer_,
                                   .description = "herald: routes each request on one instance",
                                   .ack_wait = client_.options().ack_wait,
                                   .max_ack_pending = options_.max_ack_pending});
      !s.ok()) {
    return s;
  }
  auto deliveries = DeliveryPartitions::Open(client_, engine_, options_.deliveries);
  if (!deliveries.ok()) return deliveries.status();
  deliveries_ = *std::move(deliveries);
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = client_.options().api_wait.count();
  jo.PublishAsync.MaxPending = 4096;
  jo.PublishAsync.StallWait = client_.options().api_wait.count();
  jo.PublishAsync.ErrHandler = &StreamEventLog::PublishFailed;
  jo.PublishAsync.ErrHandlerClosure = this;
  if (absl::Status s = NatsStatus(natsConnection_JetStream(&route_js_, client_.connection(), &jo),
                                  "a JetStream context for routing");
      !s.ok()) {
    return s;
  }
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream_.c_str();
  so.Consumer = consumer_.c_str();
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus st = js_PullSubscribe(&sub_, client_.js(), subject_.c_str(), consumer_.c_str(),
                                         nullptr, &so, &code);
  return NatsStatus(st, Cat("binding to consumer ", consumer_), code);
}

void StreamEventLog::PublishFailed(jsCtx* /*js*/, jsPubAckErr* /*err*/, void* self) {
  static_cast<StreamEventLog*>(self)->publish_failures_.fetch_add(1);
}

absl::Status StreamEventLog::Publish(std::string_view kind, std::string_view channel,
                                     std::string_view event, std::string_view bytes,
                                     const std::string& msg_id) {
  absl::Status s = Send(kind, channel, event, bytes, msg_id);
  (s.ok() ? appended_ : append_errors_).fetch_add(1, std::memory_order_relaxed);
  if (s.ok()) appended_bytes_.fetch_add(bytes.size(), std::memory_order_relaxed);
  return s;
}

absl::Status StreamEventLog::Send(std::string_view kind, std::string_view channel,
                                  std::string_view event, std::string_view bytes,
                                  const std::string& msg_id) {
  if (!client_.connected()) return absl::UnavailableError("not connected to NATS");
  natsMsg* raw = nullptr;
  absl::Status s = NatsStatus(
      natsMsg_Create(&raw, subject_.c_str(), nullptr, bytes.data(), static_cast<int>(bytes.size())),
      "an event message");
  if (!s.ok()) return s;
  std::unique_ptr<natsMsg, void (*)(natsMsg*)> msg(raw, natsMsg_Destroy);
  natsMsgHeader_Set(msg.get(), kKindHeader, std::string(kind).c_str());
  if (!channel.empty()) {
    natsMsgHeader_Set(msg.get(), kChannelHeader, std::string(channel).c_str());
    natsMsgHeader_Set(msg.get(), kEventHeader, std::string(event).c_str());
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MsgId = msg_id.c_str();
  po.MaxWait = std::min<int64_t>(client_.options().api_wait.count(), 2000);
  // A publish whose ack did not come may have been stored: the retry keeps the id, so
  // JetStream stores it once.
  for (int attempt = 0;; ++attempt) {
    jsPubAck* ack = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    const natsStatus st = js_PublishMsg(&ack, client_.js(), msg.get(), &po, &code);
    if (ack != nullptr) jsPubAck_Destroy(ack);
    s = NatsStatus(st, Cat("publishing to stream ", stream_), code);
    if (s.ok() || !absl::IsUnavailable(s) || attempt == 2 || !client_.connected()) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

absl::StatusOr<IngestResult> StreamEventLog::Ingest(IngestBuffer buffer, size_t size,
                                                    InputFormat format,
                                                    std::vector<IngestError>* errors,
                                                    OnDurable on_durable) {
  return Ingest(std::string_view(buffer.data(), size), format, errors, std::move(on_durable));
}

absl::StatusOr<IngestResult> StreamEventLog::Ingest(std::string_view bytes, InputFormat format,
                                                    std::vector<IngestError>* errors,
                                                    OnDurable on_durable) {
  IngestResult r = engine_.Ingest(bytes, format, errors, LogPosition(0, kValidateOnly));
  if (r.accepted == 0) return r;
  const bool one = r.accepted == 1 && r.rejected == 0;
  std::string id = one ? EventIdOf(bytes) : std::string();
  if (id.empty()) id = Cat(instance_id_, "-", next_request_.fetch_add(1));
  if (absl::Status s = Publish(KindOf(format), {}, {}, bytes, id); !s.ok()) return s;
  if (on_durable) on_durable(absl::OkStatus());
  return r;
}

absl::StatusOr<IngestResult> StreamEventLog::IngestNative(std::string_view channel,
                                                          std::string_view event,
                                                          std::string_view bytes,
                                                          std::vector<IngestError>* errors,
                                                          OnDurable on_durable) {
  IngestResult r =
      engine_.IngestNative(channel, event, bytes, errors, LogPosition(0, kValidateOnly));
  if (r.accepted == 0) return r;
  const std::string id = Cat(instance_id_, "-", next_request_.fetch_add(1));
  if (absl::Status s = Publish("native", channel, event, bytes, id); !s.ok()) return s;
  if (on_durable) on_durable(absl::OkStatus());
  return r;
}

absl::Status StreamEventLog::Replay(const std::function<bool()>& /*stop*/) {
  return absl::OkStatus();
}

void StreamEventLog::Start() {
  if (thread_.joinable()) return;
  stop_.store(false);
  deliveries_->Start();
  thread_ = std::thread([this] { Run(); });
}

void StreamEventLog::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  if (deliveries_) deliveries_->Stop();
}

absl::Status StreamEventLog::Route(natsMsg* msg) {
  jsMsgMetaData* meta = nullptr;
  if (natsMsg_GetMetaData(&meta, msg) != NATS_OK) return absl::OkStatus();  // not a JetStream one
  const uint64_t seq = meta->Sequence.Stream;
  jsMsgMetaData_Destroy(meta);
  const std::string_view kind = Header(msg, kKindHeader);
  const std::string_view data(natsMsg_GetData(msg),
                              static_cast<size_t>(natsMsg_GetDataLength(msg)));
  collected_.clear();
  LogPosition pos(seq);
  pos.collect = &collected_;
  if (kind == "native") {
    (void)engine_.IngestNative(Header(msg, kChannelHeader), Header(msg, kEventHeader), data,
                               nullptr, pos);
  } else {
    (void)engine_.Ingest(data, FormatOf(kind), nullptr, pos);
  }
  std::string id;
  for (Notification& n : collected_) {
    auto out = deliveries_->Message(n, &id);
    if (!out.ok()) return out.status();
    natsMsg* m = *out;
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = id.c_str();
    natsStatus st = js_PublishMsgAsync(route_js_, &m, &po);
    if (st != NATS_OK) {  // too many in flight: wait for them, once
      jsPubOptions wait;
      jsPubOptions_Init(&wait);
      wait.MaxWait = client_.options().api_wait.count();
      (void)js_PublishAsyncComplete(route_js_, &wait);
      st = js_PublishMsgAsync(route_js_, &m, &po);
    }
    if (m != nullptr) natsMsg_Destroy(m);  // not taken
    if (st != NATS_OK) return NatsStatus(st, Cat("publishing to stream ", deliveries_->stream()));
    notifications_.fetch_add(1, std::memory_order_relaxed);
  }
  collected_.clear();
  return absl::OkStatus();
}

void StreamEventLog::Run() {
  auto last_info = std::chrono::steady_clock::time_point();
  bool reported = false;
  auto report = [&](std::string_view line) {
    if (!reported && client_.options().log) client_.options().log(line);
    reported = true;
  };
  while (!stop_.load()) {
    natsMsgList list{};
    jsErrCode code = static_cast<jsErrCode>(0);
    const auto asked = std::chrono::steady_clock::now();
    const natsStatus st = FetchBatch(&list, sub_, options_.fetch_batch, 100, &code);
    if (st == NATS_OK) {
      // The batch's notifications, then its acks: one wait for JetStream per batch.
      const uint64_t failures = publish_failures_.load();
      absl::Status routed = absl::OkStatus();
      for (int i = 0; i < list.Count && routed.ok(); ++i) routed = Route(list.Msgs[i]);
      if (routed.ok()) {
        jsPubOptions wait;
        jsPubOptions_Init(&wait);
        wait.MaxWait = client_.options().api_wait.count();
        routed = NatsStatus(js_PublishAsyncComplete(route_js_, &wait),
                            Cat("publishing to stream ", deliveries_->stream()));
      }
      if (routed.ok() && publish_failures_.load() != failures) {
        routed = absl::UnavailableError(
            Cat("publishing to stream ", deliveries_->stream(), ": JetStream refused a message"));
      }
      if (!routed.ok()) {
        natsMsgList pending{};
        if (js_PublishAsyncGetPendingList(&pending, route_js_) == NATS_OK) {
          natsMsgList_Destroy(&pending);
        }
      }
      for (int i = 0; i < list.Count; ++i) {
        if (routed.ok()) {
          natsMsg_Ack(list.Msgs[i], nullptr);
        } else {
          natsMsg_Nak(list.Msgs[i], nullptr);  // routed again; what was stored is deduplicated
        }
      }
      routed_.fetch_add(static_cast<uint64_t>(list.Count), std::memory_order_relaxed);
      if (routed.ok()) {
        acked_.fetch_add(static_cast<uint64_t>(list.Count), std::memory_order_relaxed);
        reported = false;
      } else {
        route_failures_.fetch_add(static_cast<uint64_t>(list.Count), std::memory_order_relaxed);
        report(Cat(ToStd(routed.message()), "; the requests are routed again"));
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    } else if (st != NATS_TIMEOUT) {
      report(Cat("fetching from ", consumer_, ": ", ToStd(NatsStatus(st, "fetch", code).message()),
                 "; retrying"));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    } else if (std::chrono::steady_clock::now() - asked < std::chrono::milliseconds(10)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // cnats may not wait
    }
    natsMsgList_Destroy(&list);
    if (const auto now = std::chrono::steady_clock::now();
        now - last_info > std::chrono::seconds(2) && client_.connected()) {
      last_info = now;
      jsConsumerInfo* ci = nullptr;
      jsErrCode info_code = static_cast<jsErrCode>(0);
      if (js_GetConsumerInfo(&ci, client_.js(), stream_.c_str(), consumer_.c_str(), nullptr,
                             &info_code) == NATS_OK) {
        consumer_pending_.store(ci->NumPending, std::memory_order_relaxed);
        consumer_ack_pending_.store(static_cast<uint64_t>(ci->NumAckPending),
                                    std::memory_order_relaxed);
        jsConsumerInfo_Destroy(ci);
      }
    }
  }
}

StreamEventLog::StreamStats StreamEventLog::stream_stats() const {
  return {.published = appended_.load(std::memory_order_relaxed),
          .publish_errors = append_errors_.load(std::memory_order_relaxed),
          .routed = routed_.load(std::memory_order_relaxed),
          .acked = acked_.load(std::memory_order_relaxed),
          .notifications = notifications_.load(std::memory_order_relaxed),
          .route_failures = route_failures_.load(std::memory_order_relaxed),
          .consumer_pending = consumer_pending_.load(std::memory_order_relaxed),
          .consumer_ack_pending = consumer_ack_pending_.load(std::memory_order_relaxed),
          .deliveries = deliveries_->stats()};
}

store::EventLog::Stats StreamEventLog::stats() const {
  Stats s;
  s.appended = appended_.load(std::memory_order_relaxed);
  s.append_errors = append_errors_.load(std::memory_order_relaxed);
  s.appended_bytes = appended_bytes_.load(std::memory_order_relaxed);
  s.waiting_for_room = deliveries_->stats().waiting_for_room;
  return s;
}

}  // namespace herald::jetstream
