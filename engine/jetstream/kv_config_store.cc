#include "engine/jetstream/kv_config_store.h"

#include <algorithm>
#include <charconv>

#include "absl/strings/escaping.h"
#include "engine/common/strings.h"

namespace herald::jetstream {

using store::ConfigEntry;
using store::ConfigKind;
using store::ConfigWrite;
using store::kAnyRevision;

namespace {

constexpr std::string_view kKindKeys[] = {"cert", "sec", "prof", "sub"};  // by ConfigKind

std::string KeyOf(ConfigKind kind, std::string_view id) {
  return Cat(kKindKeys[static_cast<int>(kind)], ".", KeyToken(id));
}

// The kind and id a key names; false for a key herald did not write.
bool ParseKey(std::string_view key, ConfigKind* kind, std::string* id) {
  const size_t dot = key.find('.');
  if (dot == std::string_view::npos) return false;
  const std::string_view k = key.substr(0, dot);
  const auto* it = std::find(std::begin(kKindKeys), std::end(kKindKeys), k);
  if (it == std::end(kKindKeys)) return false;
  *kind = static_cast<ConfigKind>(it - std::begin(kKindKeys));
  std::string_view rest = key.substr(dot + 1);
  if (rest.substr(0, 4) == "b64.") {
    std::string decoded;
    rest.remove_prefix(4);
    if (!absl::WebSafeBase64Unescape(absl::string_view(rest.data(), rest.size()), &decoded)) {
      return false;
    }
    *id = std::move(decoded);
    return !id->empty();
  }
  *id = rest;
  return PlainKeyToken(rest);
}

// `<created>\n<record>` → created and record; false when malformed.
bool ParseValue(std::string_view value, uint64_t* created, std::string_view* record) {
  const size_t nl = value.find('\n');
  if (nl == std::string_view::npos) return false;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + nl, *created);
  if (ec != std::errc() || end != value.data() + nl) return false;
  *record = value.substr(nl + 1);
  return true;
}

struct MsgDeleter {
  void operator()(natsMsg* m) const { natsMsg_Destroy(m); }
};
struct PubAckDeleter {
  void operator()(jsPubAck* a) const { jsPubAck_Destroy(a); }
};

}  // namespace

absl::StatusOr<std::unique_ptr<KvConfigStore>> KvConfigStore::Open(NatsClient& client) {
  std::unique_ptr<KvConfigStore> s(new KvConfigStore(client, client.Name("config")));
  if (absl::Status st = EnsureBucket(
          client,
          {.name = s->bucket_,
           .description = "herald: subscriptions, profiles, security settings, certificates",
           .history = 5},
          &s->kv_);
      !st.ok()) {
    return st;
  }
  s->watch_ = std::make_unique<BucketWatch>(client, s->kv_, s->bucket_,
                                            [p = s.get()](kvEntry* e) { p->TakeEntry(e); });
  if (auto st = s->watch_->WaitForInitialValues(client.options().api_wait * 4); !st.ok()) return st;
  return s;
}

KvConfigStore::~KvConfigStore() {
  (void)Close();
  if (kv_ != nullptr) kvStore_Destroy(kv_);
}

absl::Status KvConfigStore::Close() {
  if (watch_ != nullptr) watch_->Stop();
  return absl::OkStatus();
}

void KvConfigStore::TakeEntry(kvEntry* e) {
  ConfigEntry entry;
  bool ours = ParseKey(kvEntry_Key(e), &entry.kind, &entry.id);
  entry.revision = kvEntry_Revision(e);
  if (ours && kvEntry_Operation(e) == kvOp_Put) {
    const std::string_view value(static_cast<const char*>(kvEntry_Value(e)),
                                 static_cast<size_t>(kvEntry_ValueLen(e)));
    std::string_view record;
    ours = ParseValue(value, &entry.created, &record);
    if (entry.created == 0) entry.created = entry.revision;
    entry.value = record;
  } else {
    entry.deleted = true;
  }
  if (ours) Take(std::move(entry));
}

void KvConfigStore::Take(ConfigEntry entry) {
  MutexLock dispatch(watch_mu_);
  {
    // After any Commit in flight, so a change it wrote is known as its own.
    MutexLock commit(commit_mu_);
    MutexLock lock(mu_);
    revision_ = std::max(revision_, entry.revision);
    const bool own = own_.erase(entry.revision) > 0;
    auto& held = entries_[Key(entry.kind, entry.id)];
    if (held.revision >= entry.revision) return;  // a newer one is known (or Commit wrote it)
    if (entry.deleted) entry.created = held.created;
    held = entry;
    if (own) return;
  }
  for (const Watcher& fn : watchers_) fn(entry);
}

absl::Status KvConfigStore::Watch(uint64_t from_revision, Watcher fn) {
  MutexLock dispatch(watch_mu_);
  std::vector<ConfigEntry> missed;
  {
    MutexLock lock(mu_);
    for (const auto& [key, e] : entries_) {
      if (e.revision > from_revision) missed.push_back(e);
    }
  }
  std::sort(missed.begin(), missed.end(),
            [](const ConfigEntry& a, const ConfigEntry& b) { return a.revision < b.revision; });
  for (const ConfigEntry& e : missed) fn(e);
  watchers_.push_back(std::move(fn));
  return absl::OkStatus();
}

bool KvConfigStore::NeedsApplying(const ConfigEntry& change) const {
  MutexLock lock(mu_);
  if (own_.contains(change.revision)) return false;
  const auto it = entries_.find(Key(change.kind, change.id));
  return it == entries_.end() || it->second.revision <= change.revision;
}

std::vector<ConfigEntry> KvConfigStore::List() const {
  std::vector<ConfigEntry> out;
  {
    MutexLock lock(mu_);
    for (const auto& [key, e] : entries_) {
      if (!e.deleted) out.push_back(e);
    }
  }
  std::sort(out.begin(), out.end(), [](const ConfigEntry& a, const ConfigEntry& b) {
    return std::tie(a.kind, a.created, a.id) < std::tie(b.kind, b.created, b.id);
  });
  return out;
}

std::optional<ConfigEntry> KvConfigStore::Get(ConfigKind kind, std::string_view id) const {
  MutexLock lock(mu_);
  const auto it = entries_.find(Key(kind, std::string(id)));
  if (it == entries_.end() || it->second.deleted) return std::nullopt;
  return it->second;
}

uint64_t KvConfigStore::lag() const { return watch_ != nullptr ? watch_->lag() : 0; }

uint64_t KvConfigStore::revision() const {
  MutexLock lock(mu_);
  return revision_;
}

absl::Status KvConfigStore::WriteOne(const ConfigWrite& w, uint64_t* revision) {
  const std::string key = KeyOf(w.kind, w.id);
  const std::string subject = Cat("$KV.", bucket_, ".", key);
  uint64_t created = 0;
  uint64_t expected = w.expected_revision;
  {
    MutexLock lock(mu_);
    const auto it = entries_.find(Key(w.kind, w.id));
    const bool exists = it != entries_.end() && !it->second.deleted;
    if (exists) created = it->second.created;
    // "Must not exist" over a tombstone: the tombstone is the last revision.
    if (expected == 0 && it != entries_.end() && it->second.deleted) expected = it->second.revision;
    if (w.expected_revision == 0 && exists) {
      return absl::FailedPreconditionError(
          Cat(store::ConfigKindName(w.kind), " ", w.id, " already exists"));
    }
  }
  std::string value;
  if (w.value) value = Cat(created, "\n", *w.value);
  natsMsg* raw = nullptr;
  absl::Status s = NatsStatus(
      natsMsg_Create(&raw, subject.c_str(), nullptr, value.data(), static_cast<int>(value.size())),
      "a KV message");
  if (!s.ok()) return s;
  std::unique_ptr<natsMsg, MsgDeleter> msg(raw);
  if (!w.value) natsMsgHeader_Set(msg.get(), "KV-Operation", "DEL");
  if (expected != kAnyRevision) {
    natsMsgHeader_Set(msg.get(), "Nats-Expected-Last-Subject-Sequence",
                      std::to_string(expected).c_str());
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = client_.options().api_wait.count();
  jsPubAck* ack_raw = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus st = js_PublishMsg(&ack_raw, client_.js(), msg.get(), &po, &code);
  std::unique_ptr<jsPubAck, PubAckDeleter> ack(ack_raw);
  s = NatsStatus(st, Cat("writing ", key, " to KV bucket ", bucket_), code);
  if (!s.ok()) return s;
  *revision = ack->Sequence;
  MutexLock lock(mu_);
  revision_ = std::max(revision_, *revision);
  auto& held = entries_[Key(w.kind, w.id)];
  if (held.revision < *revision) {  // the watcher may have been faster
    held = ConfigEntry{.kind = w.kind,
                       .id = w.id,
                       .value = w.value.value_or(""),
                       .revision = *revision,
                       .created = created != 0 ? created : *revision,
                       .deleted = !w.value};
    own_.insert(*revision);
  }
  return absl::OkStatus();
}

void KvConfigStore::Undo(const ConfigWrite& w, uint64_t written,
                         const std::optional<ConfigEntry>& before) {
  ConfigWrite back{.kind = w.kind, .id = w.id, .value = std::nullopt, .expected_revision = written};
  if (before) back.value = before->value;
  uint64_t revision = 0;
  if (absl::Status s = WriteOne(back, &revision); !s.ok() && client_.options().log) {
    client_.options().log(Cat("undoing a partial config change: ", ToStd(s.message())));
  }
}

absl::StatusOr<uint64_t> KvConfigStore::Commit(std::span<const ConfigWrite> writes) {
  MutexLock commit(commit_mu_);
  struct Done {
    const ConfigWrite* write;
    uint64_t revision;
    std::optional<ConfigEntry> before;
  };
  std::vector<Done> done;
  uint64_t last = 0;
  for (const ConfigWrite& w : writes) {
    std::optional<ConfigEntry> before = Get(w.kind, w.id);
    if (absl::Status s = WriteOne(w, &last); !s.ok()) {
      for (auto it = done.rbegin(); it != done.rend(); ++it)
        Undo(*it->write, it->revision, it->before);
      return s;
    }
    done.push_back({&w, last, std::move(before)});
  }
  return last;
}

}  // namespace herald::jetstream
