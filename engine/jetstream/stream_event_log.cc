#include "engine/jetstream/stream_event_log.h"

#include <algorithm>
#include <random>

#include "absl/container/flat_hash_set.h"
#include "engine/common/strings.h"
#include "simdjson.h"

namespace herald::jetstream {

namespace {

// Routes nothing: no profile has this id (ids are printable), so Ingest only validates.
constexpr std::string_view kValidateOnly = "\x01";

constexpr char kKindHeader[] = "Herald-Kind";
constexpr char kChannelHeader[] = "Herald-Channel";
constexpr char kEventHeader[] = "Herald-Event";

std::string RandomHex() {
  std::random_device rd;
  const uint64_t v = (uint64_t{rd()} << 32) | rd();
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

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

struct StreamEventLog::Held {
  natsMsg* msg = nullptr;                       // owned
  uint64_t seq = 0;                             // in the stream: the log position it routes with
  std::string_view kind, channel, event, data;  // point into msg
  std::vector<QueueRefusal> refusals;           // profiles to offer it again
  std::chrono::steady_clock::time_point touched;
  ~Held() {
    if (msg != nullptr) natsMsg_Destroy(msg);
  }
};

StreamEventLog::StreamEventLog(NatsClient& client, Engine& engine, Options options)
    : client_(client),
      engine_(engine),
      options_(options),
      stream_(client.Name("events")),
      consumer_(client.Name("route")),
      subject_(Cat(client.options().prefix, ".events")),
      instance_id_(RandomHex()) {}

StreamEventLog::~StreamEventLog() {
  Stop();
  if (sub_ != nullptr) natsSubscription_Destroy(sub_);
}

absl::StatusOr<std::unique_ptr<StreamEventLog>> StreamEventLog::Open(NatsClient& client,
                                                                     Engine& engine,
                                                                     Options options) {
  std::unique_ptr<StreamEventLog> log(new StreamEventLog(client, engine, options));
  if (absl::Status s = log->Bind(); !s.ok()) return s;
  return log;
}

absl::Status StreamEventLog::Bind() {
  auto report = [this](std::string_view line) {
    if (client_.options().log) client_.options().log(line);
  };
  jsStreamConfig sc;
  jsStreamConfig_Init(&sc);
  const char* subjects[] = {subject_.c_str()};
  sc.Name = stream_.c_str();
  sc.Description = "herald: accepted ingest requests, until an instance settled them";
  sc.Subjects = subjects;
  sc.SubjectsLen = 1;
  sc.Retention = js_WorkQueuePolicy;
  sc.Storage = js_FileStorage;
  sc.Replicas = client_.options().replicas;
  sc.Duplicates = int64_t{120} * 1'000'000'000;  // ns: a client's retry within 2 min is deduped
  jsStreamInfo* si = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus st = js_AddStream(&si, client_.js(), &sc, nullptr, &code);
  if (st != NATS_OK) {
    absl::Status added = NatsStatus(st, Cat("creating stream ", stream_), code);
    code = static_cast<jsErrCode>(0);
    if (js_GetStreamInfo(&si, client_.js(), stream_.c_str(), nullptr, &code) != NATS_OK) {
      return added;
    }
    const jsStreamConfig* have = si->Config;
    if (have->Retention != js_WorkQueuePolicy || have->Replicas != sc.Replicas ||
        have->SubjectsLen != 1 || subject_ != have->Subjects[0]) {
      report(Cat("stream ", stream_, " exists with other settings (replicas ", have->Replicas,
                 "); using it as it is: ", ToStd(added.message())));
    }
  }
  if (si != nullptr) jsStreamInfo_Destroy(si);

  jsConsumerInfo* ci = nullptr;
  code = static_cast<jsErrCode>(0);
  st = js_GetConsumerInfo(&ci, client_.js(), stream_.c_str(), consumer_.c_str(), nullptr, &code);
  const int64_t ack_wait_ns = static_cast<int64_t>(options_.ack_wait.count()) * 1'000'000;
  if (st == NATS_OK) {
    // An existing consumer is never changed (js_AddConsumer would update it silently).
    if (ci->Config->AckWait != ack_wait_ns ||
        ci->Config->MaxAckPending != options_.max_ack_pending) {
      report(Cat("consumer ", consumer_, " exists with other settings (ack wait ",
                 ci->Config->AckWait / 1'000'000, " ms, max ack pending ",
                 ci->Config->MaxAckPending, "); using it as it is"));
    }
    jsConsumerInfo_Destroy(ci);
  } else if (code == JSConsumerNotFoundErr || st == NATS_NOT_FOUND) {
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = consumer_.c_str();
    cc.Description = "herald: routes each request on one instance";
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = ack_wait_ns;
    cc.MaxAckPending = options_.max_ack_pending;
    cc.MaxDeliver = -1;
    code = static_cast<jsErrCode>(0);
    st = js_AddConsumer(&ci, client_.js(), stream_.c_str(), &cc, nullptr, &code);
    if (st != NATS_OK) return NatsStatus(st, Cat("creating consumer ", consumer_), code);
    jsConsumerInfo_Destroy(ci);
  } else {
    return NatsStatus(st, Cat("reading consumer ", consumer_), code);
  }

  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream_.c_str();
  so.Consumer = consumer_.c_str();
  code = static_cast<jsErrCode>(0);
  st = js_PullSubscribe(&sub_, client_.js(), subject_.c_str(), consumer_.c_str(), nullptr, &so,
                        &code);
  return NatsStatus(st, Cat("binding to consumer ", consumer_), code);
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
  thread_ = std::thread([this] { Run(); });
}

void StreamEventLog::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void StreamEventLog::Route(Held& h) {
  std::vector<QueueRefusal> refused;
  auto route = [&](LogPosition pos) {
    pos.refusals = &refused;
    if (h.kind == "native") {
      (void)engine_.IngestNative(h.channel, h.event, h.data, nullptr, pos);
    } else {
      (void)engine_.Ingest(h.data, FormatOf(h.kind), nullptr, pos);
    }
  };
  if (h.refusals.empty()) {
    route(LogPosition(h.seq));
  } else {
    const std::vector<QueueRefusal> again = std::move(h.refusals);
    for (const QueueRefusal& r : again) route(LogPosition(h.seq, r.profile_id, r.first_event));
  }
  h.refusals = std::move(refused);
}

void StreamEventLog::Settle(bool final_pass) {
  if (held_.empty()) return;
  // What the profiles still owe: the sequences they list, and all above the last one listed
  // by a profile that could not list them all.
  absl::flat_hash_set<uint64_t> owed;
  uint64_t unknown_above = UINT64_MAX;
  for (const ProfileProgress& p : engine_.DeliveryProgress(options_.max_held * 2)) {
    owed.insert(p.unsettled.begin(), p.unsettled.end());
    if (!p.listed_all) {
      unknown_above =
          std::min(unknown_above, p.unsettled.empty() ? p.oldest_unsettled : p.unsettled.back());
    }
  }
  const auto now = std::chrono::steady_clock::now();
  size_t waiting = 0;
  auto settled = [&](const std::unique_ptr<Held>& h) {
    if (h->refusals.empty() && !owed.contains(h->seq) && h->seq <= unknown_above) {
      natsMsg_Ack(h->msg, nullptr);
      acked_.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    if (final_pass) {
      natsMsg_Nak(h->msg, nullptr);  // another instance takes it at once
      return true;
    }
    if (!h->refusals.empty()) ++waiting;
    if (now - h->touched > options_.ack_wait / 3) {
      natsMsg_InProgress(h->msg, nullptr);
      h->touched = now;
    }
    return false;
  };
  held_.erase(std::remove_if(held_.begin(), held_.end(), settled), held_.end());
  held_count_.store(held_.size(), std::memory_order_relaxed);
  waiting_.store(waiting, std::memory_order_relaxed);
}

void StreamEventLog::Run() {
  auto last_reoffer = std::chrono::steady_clock::now();
  auto last_info = std::chrono::steady_clock::time_point();
  bool reported = false;
  while (!stop_.load()) {
    if (held_.size() >= options_.max_held) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    } else {
      natsMsgList list{};
      jsErrCode code = static_cast<jsErrCode>(0);
      const auto asked = std::chrono::steady_clock::now();
      const natsStatus st = natsSubscription_Fetch(&list, sub_, options_.fetch_batch, 100, &code);
      if (st == NATS_OK) {
        reported = false;
        for (int i = 0; i < list.Count; ++i) {
          auto h = std::make_unique<Held>();
          h->msg = list.Msgs[i];
          list.Msgs[i] = nullptr;
          jsMsgMetaData* meta = nullptr;
          if (natsMsg_GetMetaData(&meta, h->msg) != NATS_OK) continue;  // not a JetStream one
          h->seq = meta->Sequence.Stream;
          jsMsgMetaData_Destroy(meta);
          h->kind = Header(h->msg, kKindHeader);
          h->channel = Header(h->msg, kChannelHeader);
          h->event = Header(h->msg, kEventHeader);
          h->data = std::string_view(natsMsg_GetData(h->msg),
                                     static_cast<size_t>(natsMsg_GetDataLength(h->msg)));
          h->touched = std::chrono::steady_clock::now();
          Route(*h);
          routed_.fetch_add(1, std::memory_order_relaxed);
          held_.push_back(std::move(h));
        }
      } else if (st != NATS_TIMEOUT) {
        if (!reported && client_.options().log) {
          client_.options().log(Cat("fetching from ", consumer_, ": ",
                                    ToStd(NatsStatus(st, "fetch", code).message()), "; retrying"));
        }
        reported = true;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      } else if (std::chrono::steady_clock::now() - asked < std::chrono::milliseconds(10)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // cnats may not wait
      }
      natsMsgList_Destroy(&list);
    }
    if (const auto now = std::chrono::steady_clock::now();
        now - last_reoffer > std::chrono::milliseconds(50)) {
      last_reoffer = now;
      for (auto& h : held_) {
        if (!h->refusals.empty()) Route(*h);
      }
    }
    Settle(false);
    if (const auto now = std::chrono::steady_clock::now();
        now - last_info > std::chrono::seconds(2) && client_.connected()) {
      last_info = now;
      jsConsumerInfo* ci = nullptr;
      jsErrCode code = static_cast<jsErrCode>(0);
      if (js_GetConsumerInfo(&ci, client_.js(), stream_.c_str(), consumer_.c_str(), nullptr,
                             &code) == NATS_OK) {
        consumer_pending_.store(ci->NumPending, std::memory_order_relaxed);
        consumer_ack_pending_.store(static_cast<uint64_t>(ci->NumAckPending),
                                    std::memory_order_relaxed);
        jsConsumerInfo_Destroy(ci);
      }
    }
  }
  Settle(true);
}

StreamEventLog::StreamStats StreamEventLog::stream_stats() const {
  return {.published = appended_.load(std::memory_order_relaxed),
          .publish_errors = append_errors_.load(std::memory_order_relaxed),
          .routed = routed_.load(std::memory_order_relaxed),
          .acked = acked_.load(std::memory_order_relaxed),
          .held = held_count_.load(std::memory_order_relaxed),
          .waiting_for_room = waiting_.load(std::memory_order_relaxed),
          .consumer_pending = consumer_pending_.load(std::memory_order_relaxed),
          .consumer_ack_pending = consumer_ack_pending_.load(std::memory_order_relaxed)};
}

store::EventLog::Stats StreamEventLog::stats() const {
  Stats s;
  s.appended = appended_.load(std::memory_order_relaxed);
  s.append_errors = append_errors_.load(std::memory_order_relaxed);
  s.appended_bytes = appended_bytes_.load(std::memory_order_relaxed);
  s.waiting_for_room = waiting_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace herald::jetstream
