#include "engine/jetstream/kv_dead_letters.h"

#include <algorithm>
#include <tuple>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "engine/common/strings.h"
#include "engine/deliver/letter_index.h"

namespace herald::jetstream {
namespace {

constexpr std::string_view kLetterKeys = "l.";
constexpr std::string_view kDisabledKeys = "d.";
constexpr auto kHousekeepingEvery = std::chrono::hours(1);
// Ends the lastError of a letter kept without its payload (which reads "null").
constexpr std::string_view kNotKept = " bytes was not kept: past what NATS carries)";

std::string DisabledKey(std::string_view profile_id) {
  return Cat(kDisabledKeys, KeyToken(profile_id));
}

// Named by what makes it this letter: a burial written again after an error (the worker retries
// a failed Add) overwrites what the first attempt wrote instead of adding a duplicate.
std::string LetterKey(const DeadLetter& d) {
  const size_t hash =
      absl::Hash<std::tuple<std::string_view, std::string_view, std::string_view, int64_t, int>>{}(
          {d.profile_id, d.subscription_id, d.webhook_id, d.failed_at_ms, d.attempts});
  return Cat(kLetterKeys, absl::StrCat(absl::Hex(hash, absl::kZeroPad16)));
}

// A letter's value: its fields as EncodeDeadLetter's JSON (one line, without the payload), a
// newline, and the payload verbatim (escaping it as a JSON string could double it). A payload
// that would take the value past what NATS carries is not kept, and its letter says so: a burial
// that can never be written would hold its profile up for good.
std::string EncodeValue(const DeadLetter& d, size_t max_bytes) {
  DeadLetter fields = d;
  fields.payload.clear();
  std::string value = deliver::EncodeDeadLetter(fields, /*payload_as_json=*/false);
  if (value.size() + 1 + d.payload.size() > max_bytes) {
    fields.last_error = Cat(d.last_error, " (its payload of ", d.payload.size(), kNotKept);
    value = deliver::EncodeDeadLetter(fields, /*payload_as_json=*/false);
    return value + "\nnull";
  }
  value += '\n';
  value += d.payload;
  return value;
}

bool DecodeValue(std::string_view value, DeadLetter& d) {
  const size_t nl = value.find('\n');
  if (nl == std::string_view::npos || !deliver::DecodeDeadLetter(value.substr(0, nl), d)) {
    return false;
  }
  d.payload = value.substr(nl + 1);
  return true;
}

// Every field but the payload.
DeadLetter Fields(DeadLetter d) {
  d.payload.clear();
  d.payload.shrink_to_fit();
  return d;
}

}  // namespace

KvDeadLetters::KvDeadLetters(NatsClient& client, Options options)
    : client_(client), options_(std::move(options)), bucket_(client.Name("dead_letters")) {}

absl::StatusOr<std::shared_ptr<KvDeadLetters>> KvDeadLetters::Open(NatsClient& client,
                                                                   Options options) {
  std::shared_ptr<KvDeadLetters> s(new KvDeadLetters(client, std::move(options)));
  if (absl::Status st = EnsureBucket(
          client, {.name = s->bucket_, .description = "herald: dead letters, disabled profiles"},
          &s->kv_);
      !st.ok()) {
    return st;
  }
  s->watch_ = std::make_unique<BucketWatch>(client, s->kv_, s->bucket_,
                                            [p = s.get()](kvEntry* e) { p->TakeEntry(e); });
  if (auto st = s->watch_->WaitForInitialValues(client.options().api_wait * 4); !st.ok()) return st;
  s->housekeeping_ = std::thread([p = s.get()] { p->Housekeeping(); });
  return s;
}

KvDeadLetters::~KvDeadLetters() {
  stop_.store(true);
  if (housekeeping_.joinable()) housekeeping_.join();
  if (watch_ != nullptr) watch_->Stop();
  if (kv_ != nullptr) kvStore_Destroy(kv_);
}

int64_t KvDeadLetters::Now() const {
  if (options_.now_ms) return options_.now_ms();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t KvDeadLetters::OldestKept() const {
  return options_.max_age.count() > 0 ? Now() - options_.max_age.count() : INT64_MIN;
}

std::optional<std::pair<std::string, bool>> KvDeadLetters::Apply(std::string_view key,
                                                                 uint64_t revision, bool put,
                                                                 std::string_view value) {
  const bool letter = key.substr(0, kLetterKeys.size()) == kLetterKeys;
  if (!letter && key.substr(0, kDisabledKeys.size()) != kDisabledKeys) return std::nullopt;
  auto [known, fresh] = revisions_.try_emplace(std::string(key), 0);
  if (!fresh && known->second >= revision) return std::nullopt;  // this or a newer one applied
  const uint64_t before = known->second;
  known->second = revision;
  if (!put) tombstones_.emplace_back(revision, std::string(key));
  if (letter) {
    if (auto it = letters_.find(before); before != 0 && it != letters_.end()) {
      live_bytes_ -= it->second.bytes;
      letters_.erase(it);
      replaying_.erase(before);
    }
    DeadLetter d;
    if (put && DecodeValue(value, d)) {
      d.id = revision;
      live_bytes_ += value.size();
      letters_[revision] =
          Entry{.letter = Fields(std::move(d)), .key = std::string(key), .bytes = value.size()};
    }
    return std::nullopt;
  }
  const auto it = disabled_.find(key);
  if (put && it == disabled_.end()) {
    disabled_.emplace(std::string(key), std::string(value));
    return std::make_pair(std::string(value), true);
  }
  if (!put && it != disabled_.end()) {
    std::string profile = std::move(it->second);
    disabled_.erase(it);
    return std::make_pair(std::move(profile), false);
  }
  return std::nullopt;
}

void KvDeadLetters::ApplyOwn(std::string_view key, uint64_t revision, bool put,
                             std::string_view value) {
  // The watch may have delivered it already, and a change after it (another instance's delete,
  // whose tombstone is gone once the watch passed it): what the watch applied stands.
  if (revision <= watched_) return;
  (void)Apply(key, revision, put, value);
}

void KvDeadLetters::TakeEntry(kvEntry* e) {
  const std::string_view value(static_cast<const char*>(kvEntry_Value(e)),
                               static_cast<size_t>(kvEntry_ValueLen(e)));
  std::optional<std::pair<std::string, bool>> changed;
  {
    MutexLock lock(mu_);
    const uint64_t revision = kvEntry_Revision(e);
    // The watch delivers in revision order: no older change of a key it passed comes any more.
    while (!tombstones_.empty() && tombstones_.front().first < revision) {
      auto it = revisions_.find(tombstones_.front().second);
      if (it != revisions_.end() && it->second == tombstones_.front().first) revisions_.erase(it);
      tombstones_.pop_front();
    }
    const std::string_view key = kvEntry_Key(e);
    watched_ = std::max(watched_, revision);
    changed = Apply(key, revision, kvEntry_Operation(e) == kvOp_Put, value);
    if (writing_.contains(ToAbsl(key)))
      changed.reset();  // this store's own, seen before it returned
  }
  if (!changed) return;
  MutexLock lock(callback_mu_);
  if (disabled_elsewhere_) disabled_elsewhere_(changed->first, changed->second);
}

void KvDeadLetters::OnDisabledElsewhere(const std::function<void(const std::string&, bool)>& fn) {
  MutexLock lock(callback_mu_);
  disabled_elsewhere_ = fn;
}

absl::StatusOr<uint64_t> KvDeadLetters::DeleteKey(const std::string& key) {
  // kvStore_Delete, with the revision it wrote (the client's call keeps it).
  natsMsg* msg = nullptr;
  const std::string subject = Cat("$KV.", bucket_, ".", key);
  if (natsStatus st = natsMsg_Create(&msg, subject.c_str(), nullptr, nullptr, 0); st != NATS_OK) {
    return NatsStatus(st, "deleting a dead letter");
  }
  natsMsgHeader_Set(msg, "KV-Operation", "DEL");
  jsPubAck* ack = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus st = js_PublishMsg(&ack, client_.js(), msg, nullptr, &code);
  natsMsg_Destroy(msg);
  if (st != NATS_OK) return NatsStatus(st, Cat("deleting ", key, " of ", bucket_), code);
  const uint64_t revision = ack->Sequence;
  jsPubAck_Destroy(ack);
  return revision;
}

std::vector<uint64_t> KvDeadLetters::OverBounds() const {
  std::vector<uint64_t> out;
  uint64_t bytes = live_bytes_;
  const int64_t oldest_kept = OldestKept();
  for (const auto& [id, e] : letters_) {
    const bool over = options_.max_bytes > 0 && bytes > options_.max_bytes;
    if (!over && e.letter.failed_at_ms >= oldest_kept) break;  // oldest first
    if (replaying_.contains(id)) continue;                     // a replay settles it
    out.push_back(id);
    bytes -= e.bytes;
  }
  return out;
}

absl::StatusOr<size_t> KvDeadLetters::DeleteLetters(const std::vector<uint64_t>& ids) {
  size_t deleted = 0;
  for (const uint64_t id : ids) {
    std::string key;
    {
      MutexLock lock(mu_);
      auto it = letters_.find(id);
      if (it == letters_.end()) continue;
      key = it->second.key;
    }
    auto revision = DeleteKey(key);
    if (!revision.ok()) return revision.status();
    MutexLock lock(mu_);
    ApplyOwn(key, *revision, /*put=*/false, {});
    ++deleted;
  }
  return deleted;
}

absl::Status KvDeadLetters::Add(std::vector<DeadLetter>& letters,
                                std::span<const uint64_t> replaces) {
  MutexLock write(write_mu_);
  std::vector<uint64_t> removed;  // the replayed letters these replace
  std::vector<std::string> values(letters.size());
  {
    MutexLock lock(mu_);
    for (size_t i = 0; i < letters.size(); ++i) {
      letters[i].id = 0;
      const uint64_t replaced = i < replaces.size() ? replaces[i] : 0;
      // A replayed letter deleted meanwhile stays deleted: failing again brings it not back.
      if (replaced != 0 && !letters_.contains(replaced)) continue;
      if (replaced != 0) removed.push_back(replaced);
      values[i] = EncodeValue(
          letters[i],
          static_cast<size_t>(natsConnection_GetMaxPayload(client_.connection())) - 512);
    }
  }
  // New letters first, then what they replace: a crash in between leaves a duplicate, not a gap.
  for (size_t i = 0; i < letters.size(); ++i) {
    if (values[i].empty()) continue;
    const std::string key = LetterKey(letters[i]);
    uint64_t revision = 0;
    if (natsStatus st = kvStore_Put(&revision, kv_, key.c_str(), values[i].data(),
                                    static_cast<int>(values[i].size()));
        st != NATS_OK) {
      for (size_t j = i; j < letters.size(); ++j) letters[j].id = 0;
      return NatsStatus(st, Cat("writing a dead letter to ", bucket_));
    }
    letters[i].id = revision;
    MutexLock lock(mu_);
    ApplyOwn(key, revision, /*put=*/true, values[i]);
  }
  std::vector<uint64_t> over;
  {
    MutexLock lock(mu_);
    over = OverBounds();
  }
  removed.insert(removed.end(), over.begin(), over.end());
  auto deleted = DeleteLetters(removed);
  if (!deleted.ok()) return deleted.status();
  MutexLock lock(mu_);
  dropped_ += over.size();
  return absl::OkStatus();
}

absl::Status KvDeadLetters::LoadPayloads(std::vector<Entry>& entries) const {
  std::vector<Entry> loaded;
  loaded.reserve(entries.size());
  for (Entry& e : entries) {
    kvEntry* got = nullptr;
    const natsStatus st = kvStore_Get(&got, kv_, e.key.c_str());
    if (st == NATS_NOT_FOUND) continue;  // deleted meanwhile
    if (st != NATS_OK) return NatsStatus(st, Cat("reading dead letter ", e.letter.id, " back"));
    DeadLetter d;
    const bool ok = kvEntry_Operation(got) == kvOp_Put &&
                    DecodeValue(std::string_view(static_cast<const char*>(kvEntry_Value(got)),
                                                 static_cast<size_t>(kvEntry_ValueLen(got))),
                                d);
    kvEntry_Destroy(got);
    if (!ok) continue;
    e.letter.payload = std::move(d.payload);
    loaded.push_back(std::move(e));
  }
  entries = std::move(loaded);
  return absl::OkStatus();
}

absl::StatusOr<DeadLetterPage> KvDeadLetters::List(std::string_view profile_id, size_t page,
                                                   size_t size) const {
  std::vector<Entry> picked;
  DeadLetterPage out;
  {
    MutexLock lock(mu_);
    picked = deliver::PickPage(letters_, profile_id, page, size, OldestKept(), &out.total);
  }
  if (auto s = LoadPayloads(picked); !s.ok()) return s;
  out.results.reserve(picked.size());
  for (Entry& e : picked) out.results.push_back(std::move(e.letter));
  return out;
}

absl::StatusOr<std::vector<DeadLetter>> KvDeadLetters::BeginReplay(
    std::string_view profile_id, const std::vector<uint64_t>& ids) {
  std::vector<Entry> picked;
  {
    MutexLock lock(mu_);
    picked = deliver::PickReplay(letters_, replaying_, profile_id, ids, OldestKept());
  }
  std::vector<uint64_t> taken;
  taken.reserve(picked.size());
  for (const Entry& e : picked) taken.push_back(e.letter.id);
  absl::Status s = LoadPayloads(picked);
  if (!s.ok()) {
    EndReplay(taken);
    return s;
  }
  std::vector<DeadLetter> out;
  out.reserve(picked.size());
  for (Entry& e : picked) {
    // Without its payload there is nothing to send: it stays, listed, until deleted.
    if (e.letter.payload == "null" && e.letter.last_error.ends_with(kNotKept)) continue;
    out.push_back(std::move(e.letter));
  }
  if (out.size() < taken.size()) {  // those deleted meanwhile (or not kept) are not replayed
    std::vector<uint64_t> gone;
    for (const uint64_t id : taken) {
      if (std::none_of(out.begin(), out.end(), [id](const DeadLetter& d) { return d.id == id; })) {
        gone.push_back(id);
      }
    }
    EndReplay(gone);
  }
  return out;
}

absl::Status KvDeadLetters::Remove(const std::vector<uint64_t>& ids) {
  if (ids.empty()) return absl::OkStatus();
  MutexLock write(write_mu_);
  auto deleted = DeleteLetters(ids);
  if (!deleted.ok()) EndReplay(ids);  // those left are kept, and replayed again (a duplicate)
  return deleted.status();
}

void KvDeadLetters::EndReplay(const std::vector<uint64_t>& ids) {
  MutexLock lock(mu_);
  for (const uint64_t id : ids) replaying_.erase(id);
}

bool KvDeadLetters::Contains(uint64_t id) const {
  MutexLock lock(mu_);
  return letters_.contains(id);
}

absl::StatusOr<size_t> KvDeadLetters::Delete(std::string_view profile_id,
                                             const std::vector<uint64_t>& ids) {
  MutexLock write(write_mu_);
  std::vector<uint64_t> gone;
  {
    MutexLock lock(mu_);
    gone = deliver::PickDeletes(letters_, profile_id, ids);
  }
  return DeleteLetters(gone);
}

std::map<std::string, uint64_t> KvDeadLetters::CountByProfile() const {
  MutexLock lock(mu_);
  return deliver::CountPerProfile(letters_, OldestKept());
}

absl::Status KvDeadLetters::SetDisabled(std::string_view profile_id, bool disabled) {
  MutexLock write(write_mu_);
  const std::string key = DisabledKey(profile_id);
  {
    MutexLock lock(mu_);
    if (disabled_.contains(key) == disabled) return absl::OkStatus();
  }
  {
    MutexLock lock(mu_);
    writing_.insert(key);
  }
  absl::StatusOr<uint64_t> revision = 0;
  if (disabled) {
    if (natsStatus st = kvStore_Put(&*revision, kv_, key.c_str(), profile_id.data(),
                                    static_cast<int>(profile_id.size()));
        st != NATS_OK) {
      revision = NatsStatus(st, Cat("disabling profile ", profile_id, " in ", bucket_));
    }
  } else {
    revision = DeleteKey(key);
  }
  MutexLock lock(mu_);
  writing_.erase(key);
  if (!revision.ok()) return revision.status();
  ApplyOwn(key, *revision, disabled, profile_id);
  return absl::OkStatus();
}

std::vector<std::string> KvDeadLetters::disabled() const {
  MutexLock lock(mu_);
  std::vector<std::string> out;
  out.reserve(disabled_.size());
  for (const auto& [key, profile] : disabled_) out.push_back(profile);
  return out;
}

KvDeadLetters::Stats KvDeadLetters::stats() const {
  MutexLock lock(mu_);
  return {.letters = letters_.size(),
          .bytes = live_bytes_,
          .file_bytes = live_bytes_,
          .dropped = dropped_};
}

void KvDeadLetters::Housekeeping() {
  auto next = std::chrono::steady_clock::now() + kHousekeepingEvery;
  while (!stop_.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (std::chrono::steady_clock::now() < next || !client_.connected()) continue;
    next = std::chrono::steady_clock::now() + kHousekeepingEvery;
    {
      MutexLock write(write_mu_);
      std::vector<uint64_t> over;
      {
        MutexLock lock(mu_);
        over = OverBounds();
      }
      if (auto deleted = DeleteLetters(over); deleted.ok()) {
        MutexLock lock(mu_);
        dropped_ += *deleted;
      }
    }
  }
}

}  // namespace herald::jetstream
