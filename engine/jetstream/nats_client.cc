#include "engine/jetstream/nats_client.h"

#include <algorithm>
#include <cstdio>
#include <random>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_join.h"
#include "engine/common/strings.h"

namespace herald::jetstream {

absl::Status NatsStatus(natsStatus s, std::string_view what, jsErrCode code) {
  if (s == NATS_OK) return absl::OkStatus();
  natsStatus last = NATS_OK;
  const char* detail = nats_GetLastError(&last);
  std::string text = Cat(what, ": ", natsStatus_GetText(s));
  if (detail != nullptr && *detail != '\0') text = Cat(text, " (", detail, ")");
  if (code != 0) text = Cat(text, " [JetStream error ", static_cast<int>(code), "]");
  // A compare-and-set that lost: the KV helpers report it only in the text.
  const bool wrong_sequence =
      code == JSStreamWrongLastSequenceErr ||
      (detail != nullptr &&
       std::string_view(detail).find("wrong last sequence") != std::string_view::npos);
  if (wrong_sequence) return absl::FailedPreconditionError(text);
  switch (s) {
    case NATS_TIMEOUT:
    case NATS_NO_SERVER:
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_STALE_CONNECTION:
    case NATS_NO_RESPONDERS:
    case NATS_IO_ERROR:
      return absl::UnavailableError(text);
    case NATS_NOT_FOUND:
      return absl::NotFoundError(text);
    default:
      return absl::InternalError(text);
  }
}

namespace {
void Report(NatsClient& client, std::string_view line) {
  if (client.options().log) client.options().log(line);
}
constexpr int64_t kNanosPerMilli = 1'000'000;
}  // namespace

std::string RandomId() {
  std::random_device rd;
  const uint64_t v = (uint64_t{rd()} << 32) | rd();
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

natsStatus FetchBatch(natsMsgList* list, natsSubscription* sub, int batch, int64_t timeout_ms,
                      jsErrCode* code) {
  int pending = 0;
  if (natsSubscription_GetPending(sub, &pending, nullptr) != NATS_OK) pending = 0;
  return natsSubscription_Fetch(list, sub, std::max(batch, 2 * pending + 2), timeout_ms, code);
}

absl::Status EnsureStream(NatsClient& client, const StreamSpec& spec) {
  jsStreamConfig sc;
  jsStreamConfig_Init(&sc);
  const char* subjects[] = {spec.subjects.c_str()};
  sc.Name = spec.name.c_str();
  sc.Description = spec.description.c_str();
  sc.Subjects = subjects;
  sc.SubjectsLen = 1;
  sc.Retention = spec.work_queue ? js_WorkQueuePolicy : js_LimitsPolicy;
  sc.Storage = js_FileStorage;
  sc.Replicas = client.options().replicas;
  sc.Duplicates = static_cast<int64_t>(spec.duplicates.count()) * 1000 * kNanosPerMilli;
  jsStreamInfo* si = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus st = js_AddStream(&si, client.js(), &sc, nullptr, &code);
  if (st != NATS_OK) {
    absl::Status added = NatsStatus(st, Cat("creating stream ", spec.name), code);
    code = static_cast<jsErrCode>(0);
    if (js_GetStreamInfo(&si, client.js(), spec.name.c_str(), nullptr, &code) != NATS_OK) {
      return added;
    }
    const jsStreamConfig* have = si->Config;
    if (have->Retention != sc.Retention || have->Replicas != sc.Replicas ||
        have->SubjectsLen != 1 || spec.subjects != have->Subjects[0]) {
      Report(client, Cat("stream ", spec.name, " exists with other settings (replicas ",
                         have->Replicas, "); using it as it is: ", ToStd(added.message())));
    }
  }
  if (si != nullptr) jsStreamInfo_Destroy(si);
  return absl::OkStatus();
}

absl::Status EnsureConsumer(NatsClient& client, const ConsumerSpec& spec) {
  jsConsumerInfo* ci = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus st =
      js_GetConsumerInfo(&ci, client.js(), spec.stream.c_str(), spec.name.c_str(), nullptr, &code);
  const int64_t ack_wait_ns = static_cast<int64_t>(spec.ack_wait.count()) * kNanosPerMilli;
  if (st == NATS_OK) {
    if (ci->Config->AckWait != ack_wait_ns || ci->Config->MaxAckPending != spec.max_ack_pending) {
      Report(client, Cat("consumer ", spec.name, " exists with other settings (ack wait ",
                         ci->Config->AckWait / kNanosPerMilli, " ms, max ack pending ",
                         ci->Config->MaxAckPending, "); using it as it is"));
    }
    jsConsumerInfo_Destroy(ci);
    return absl::OkStatus();
  }
  if (code != JSConsumerNotFoundErr && st != NATS_NOT_FOUND) {
    return NatsStatus(st, Cat("reading consumer ", spec.name), code);
  }
  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  cc.Durable = spec.name.c_str();
  cc.Description = spec.description.c_str();
  cc.FilterSubject = spec.filter.empty() ? nullptr : spec.filter.c_str();
  cc.AckPolicy = js_AckExplicit;
  cc.AckWait = ack_wait_ns;
  cc.MaxAckPending = spec.max_ack_pending;
  cc.MaxDeliver = -1;
  code = static_cast<jsErrCode>(0);
  st = js_AddConsumer(&ci, client.js(), spec.stream.c_str(), &cc, nullptr, &code);
  if (st != NATS_OK) return NatsStatus(st, Cat("creating consumer ", spec.name), code);
  jsConsumerInfo_Destroy(ci);
  return absl::OkStatus();
}

absl::Status EnsureBucket(NatsClient& client, const BucketSpec& spec, kvStore** kv) {
  kvConfig cfg;
  kvConfig_Init(&cfg);
  cfg.Bucket = spec.name.c_str();
  cfg.Description = spec.description.c_str();
  cfg.History = spec.history;
  cfg.TTL = static_cast<int64_t>(spec.ttl.count()) * kNanosPerMilli;
  cfg.StorageType = js_FileStorage;
  cfg.Replicas = client.options().replicas;
  natsStatus st = js_CreateKeyValue(kv, client.js(), &cfg);
  if (st == NATS_OK) return absl::OkStatus();
  absl::Status created = NatsStatus(st, Cat("creating KV bucket ", spec.name));
  // An existing bucket made with other settings: reported, used as it is, never changed.
  if (js_KeyValue(kv, client.js(), spec.name.c_str()) != NATS_OK) return created;
  Report(client, Cat("KV bucket ", spec.name, " exists with other settings; using it as it is (",
                     ToStd(created.message()), ")"));
  return absl::OkStatus();
}

bool PlainKeyToken(std::string_view id) {
  return !id.empty() && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '=';
  });
}

std::string KeyToken(std::string_view id) {
  if (PlainKeyToken(id)) return std::string(id);
  return Cat("b64.", ToStd(absl::WebSafeBase64Escape(absl::string_view(id.data(), id.size()))));
}

std::string NatsClient::Name(std::string_view suffix) const {
  return Cat(options_.prefix, "_", suffix);
}

NatsClient::NatsClient(NatsOptions options)
    : options_(std::move(options)), shared_(new Shared{.log = options_.log}) {}

void NatsClient::Disconnected(natsConnection* /*nc*/, void* shared) {
  auto* c = static_cast<Shared*>(shared);
  if (!c->connected.exchange(false) || c->closing.load()) return;
  c->disconnects.fetch_add(1, std::memory_order_relaxed);
  c->Log("lost the connection to NATS; reconnecting");
}

void NatsClient::Reconnected(natsConnection* nc, void* shared) {
  auto* c = static_cast<Shared*>(shared);
  c->connected.store(true);
  c->reconnects.fetch_add(1, std::memory_order_relaxed);
  char url[256] = {};
  natsConnection_GetConnectedUrl(nc, url, sizeof(url));
  c->Log(Cat("reconnected to NATS at ", url));
}

void NatsClient::Closed(natsConnection* /*nc*/, void* shared) {
  delete static_cast<Shared*>(shared);
}

void NatsClient::AsyncError(natsConnection* /*nc*/, natsSubscription* /*sub*/, natsStatus err,
                            void* shared) {
  static_cast<Shared*>(shared)->Log(Cat("NATS: ", natsStatus_GetText(err)));
}

absl::StatusOr<std::unique_ptr<NatsClient>> NatsClient::Connect(NatsOptions options,
                                                                const std::function<bool()>& stop) {
  if (options.urls.empty()) return absl::InvalidArgumentError("no NATS URL given");
  std::unique_ptr<NatsClient> c(new NatsClient(std::move(options)));
  const NatsOptions& o = c->options_;
  auto check = [](natsStatus s, std::string_view what) { return NatsStatus(s, what); };
  if (auto s = check(natsOptions_Create(&c->opts_), "NATS options"); !s.ok()) return s;
  std::vector<const char*> urls;
  for (const std::string& u : o.urls) urls.push_back(u.c_str());
  natsOptions* opts = c->opts_;
  absl::Status s =
      check(natsOptions_SetServers(opts, urls.data(), static_cast<int>(urls.size())), "NATS URLs");
  if (s.ok()) s = check(natsOptions_SetName(opts, o.prefix.c_str()), "NATS client name");
  if (s.ok()) s = check(natsOptions_SetMaxReconnect(opts, -1), "NATS reconnects");
  if (s.ok()) s = check(natsOptions_SetReconnectWait(opts, 250), "NATS reconnect wait");
  if (s.ok()) s = check(natsOptions_SetTimeout(opts, 2000), "NATS connect timeout");
  if (s.ok() && !o.user.empty()) {
    s = check(natsOptions_SetUserInfo(opts, o.user.c_str(), o.password.c_str()), "NATS user");
  }
  if (s.ok() && !o.credentials_file.empty()) {
    s = check(natsOptions_SetUserCredentialsFromFiles(opts, o.credentials_file.c_str(), nullptr),
              Cat("NATS credentials file ", o.credentials_file));
  }
  if (s.ok() && (!o.tls_ca_file.empty() || !o.tls_cert_file.empty())) {
    s = check(natsOptions_SetSecure(opts, true), "NATS TLS");
  }
  if (s.ok() && !o.tls_ca_file.empty()) {
    s = check(natsOptions_LoadCATrustedCertificates(opts, o.tls_ca_file.c_str()),
              Cat("NATS TLS CA file ", o.tls_ca_file));
  }
  if (s.ok() && !o.tls_cert_file.empty()) {
    s = check(
        natsOptions_LoadCertificatesChain(opts, o.tls_cert_file.c_str(), o.tls_key_file.c_str()),
        Cat("NATS TLS certificate ", o.tls_cert_file));
  }
  Shared* shared = c->shared_;
  if (s.ok()) s = check(natsOptions_SetDisconnectedCB(opts, Disconnected, shared), "NATS callback");
  if (s.ok()) s = check(natsOptions_SetReconnectedCB(opts, Reconnected, shared), "NATS callback");
  if (s.ok()) s = check(natsOptions_SetClosedCB(opts, Closed, shared), "NATS callback");
  if (s.ok()) s = check(natsOptions_SetErrorHandler(opts, AsyncError, shared), "NATS callback");
  // A bad file or option is the configuration's fault: exit 2 without retrying.
  if (!s.ok()) return absl::InvalidArgumentError(s.message());

  const std::string where = absl::StrJoin(o.urls, ",");
  const auto deadline = std::chrono::steady_clock::now() + o.connect_wait;
  for (int attempt = 1;; ++attempt) {
    const natsStatus st = natsConnection_Connect(&c->nc_, opts);
    if (st == NATS_OK) break;
    const absl::Status why = NatsStatus(st, Cat("connecting to NATS at ", where));
    const auto left = std::chrono::duration_cast<std::chrono::seconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || (stop && stop())) {
      return absl::UnavailableError(Cat(ToStd(why.message()), "; gave up after ", attempt,
                                        " attempts (--nats-connect-wait)"));
    }
    c->shared_->Log(Cat(ToStd(why.message()), "; attempt ", attempt, ", retrying for ",
                        left.count(), " s more"));
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  c->shared_->connected.store(true);
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = o.api_wait.count();
  if (auto js = check(natsConnection_JetStream(&c->js_, c->nc_, &jo), "JetStream context");
      !js.ok()) {
    return js;
  }
  return c;
}

NatsClient::~NatsClient() {
  if (js_ != nullptr) jsCtx_Destroy(js_);
  if (nc_ != nullptr) {
    shared_->closing.store(true);
    natsConnection_Close(nc_);  // its closed callback frees shared_
    natsConnection_Destroy(nc_);
  } else {
    delete shared_;
  }
  if (opts_ != nullptr) natsOptions_Destroy(opts_);
}

}  // namespace herald::jetstream
