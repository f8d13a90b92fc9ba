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

bool PlainKeyToken(std::string_view id) {
  if (id.empty()) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '=';
  });
}

std::string KeyOf(ConfigKind kind, std::string_view id) {
  const std::string_view k = kKindKeys[static_cast<int>(kind)];
  if (PlainKeyToken(id)) return Cat(k, ".", id);
  return Cat(k, ".b64.", ToStd(absl::WebSafeBase64Escape(absl::string_view(id.data(), id.size()))));
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
  s->thread_ = std::thread([p = s.get()] { p->Run(); });
  s->checker_ = std::thread([p = s.get()] { p->Check(); });
  const auto deadline = std::chrono::steady_clock::now() + client.options().api_wait * 4;
  MutexLock lock(s->mu_);
  while (!s->initial_done_) {
    if (!s->initial_cv_.WaitUntil(s->mu_, deadline) && !s->initial_done_) {
      return absl::UnavailableError(
          Cat("KV bucket ", s->bucket_, ": its initial values did not arrive in time"));
    }
  }
  return s;
}

KvConfigStore::~KvConfigStore() {
  (void)Close();
  if (kv_ != nullptr) kvStore_Destroy(kv_);
}

absl::Status KvConfigStore::Close() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  if (checker_.joinable()) checker_.join();
  return absl::OkStatus();
}

void KvConfigStore::Run() {
  kvWatcher* w = nullptr;
  int backoff_ms = 100;
  auto log = [this](std::string_view line) {
    if (client_.options().log) client_.options().log(line);
  };
  auto pause = [&] {
    for (int slept = 0; slept < backoff_ms && !stop_.load(); slept += 50) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    backoff_ms = std::min(backoff_ms * 2, 2000);
  };
  std::chrono::steady_clock::time_point rewatched_at{};  // set while a new watch catches up
  while (!stop_.load()) {
    if (w == nullptr) {
      kvWatchOptions o;
      kvWatchOptions_Init(&o);
      if (const natsStatus st = kvStore_WatchAll(&w, kv_, &o); st != NATS_OK) {
        w = nullptr;
        log(Cat("watching KV bucket ", bucket_, ": ", ToStd(NatsStatus(st, "watch").message()),
                "; retrying"));
        pause();
        continue;
      }
      rewatch_.store(false);
    }
    if (rewatch_.exchange(false)) {
      rewatched_at = std::chrono::steady_clock::now();
      log(Cat("the watch of KV bucket ", bucket_, " stalled at revision ", watched_.load(),
              " (the bucket is at ", stream_last_.load(), "); watching again"));
      kvWatcher_Destroy(w);
      w = nullptr;
      watch_restarts_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    kvEntry* e = nullptr;
    const natsStatus st = kvWatcher_Next(&e, w, 200);
    if (st == NATS_TIMEOUT) continue;
    if (st != NATS_OK) {
      log(Cat("KV bucket ", bucket_, " watch: ", ToStd(NatsStatus(st, "next").message()),
              "; watching again"));
      kvWatcher_Destroy(w);
      w = nullptr;
      watch_restarts_.fetch_add(1, std::memory_order_relaxed);
      pause();
      continue;
    }
    backoff_ms = 100;
    if (e == nullptr) {  // the initial values are all in
      if (rewatched_at != std::chrono::steady_clock::time_point{}) {
        log(Cat("the watch of KV bucket ", bucket_, " caught up in ",
                std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - rewatched_at)
                    .count(),
                " ms"));
        rewatched_at = {};
      }
      MutexLock lock(mu_);
      initial_done_ = true;
      initial_cv_.NotifyAll();
      continue;
    }
    ConfigEntry entry;
    bool ours = ParseKey(kvEntry_Key(e), &entry.kind, &entry.id);
    entry.revision = kvEntry_Revision(e);
    if (entry.revision > watched_.load(std::memory_order_relaxed)) {
      watched_.store(entry.revision, std::memory_order_relaxed);
    }
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
    kvEntry_Destroy(e);
    if (ours) Take(std::move(entry));
  }
  if (w != nullptr) kvWatcher_Destroy(w);
}

// Every 250 ms: how far the bucket is ahead. A watcher that stays behind without moving across
// two checks stalled (cnats may take 20 s to resume one after a meta-leader loss,
// reference/jetstream.md §4): the watch thread makes it again, and what it missed comes with its
// initial values. Not at each reconnect: destroying a watcher while cnats resets it is unsafe.
// Its own thread, since the stream info call can block for seconds during an election.
void KvConfigStore::Check() {
  const std::string stream = Cat("KV_", bucket_);
  jsOptions quick;  // a call stuck in an election gives way to the next check
  jsOptions_Init(&quick);
  quick.Wait = 1000;
  uint64_t behind_at = 0;  // what the watcher had delivered at the last check, + 1, when behind
  while (!stop_.load()) {
    for (int slept = 0; slept < 250 && !stop_.load(); slept += 50) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (stop_.load() || !client_.connected()) continue;
    jsStreamInfo* si = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    if (js_GetStreamInfo(&si, client_.js(), stream.c_str(), &quick, &code) != NATS_OK) continue;
    const uint64_t last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    stream_last_.store(last, std::memory_order_relaxed);
    const uint64_t watched = watched_.load(std::memory_order_relaxed);
    if (last <= watched) {
      behind_at = 0;
    } else if (behind_at == watched + 1) {
      rewatch_.store(true);
      behind_at = 0;
    } else {
      behind_at = watched + 1;
    }
  }
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

uint64_t KvConfigStore::lag() const {
  const uint64_t last = stream_last_.load(std::memory_order_relaxed);
  const uint64_t watched = watched_.load(std::memory_order_relaxed);
  return last > watched ? last - watched : 0;
}

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
