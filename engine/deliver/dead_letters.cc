#include "engine/deliver/dead_letters.h"

#include <fcntl.h>
#include <simdjson.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <filesystem>
#include <set>

#include "engine/common/framed_records.h"
#include "engine/common/json_writer.h"
#include "engine/common/strings.h"
#include "engine/deliver/letter_index.h"
#include "engine/model/json_codec.h"

namespace herald::deliver {
namespace {

constexpr char kFile[] = "dead-letters.log";

std::string AddRecord(const DeadLetter& d) {
  // The payload as a string: it may span lines, and records are one line each.
  std::string json;
  JsonWriter(json)
      .BeginObject()
      .Field("op", "add")
      .RawField("letter", EncodeDeadLetter(d, /*payload_as_json=*/false))
      .EndObject();
  return FrameRecord(json);
}

std::string ProfileRecord(std::string_view op, std::string_view profile_id) {
  std::string json;
  JsonWriter(json).BeginObject().Field("op", op).Field("profileId", profile_id).EndObject();
  return FrameRecord(json);
}

}  // namespace

std::string EncodeDeadLetter(const DeadLetter& d, bool payload_as_json) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject()
      .Field("id", std::to_string(d.id))
      .Field("profileId", d.profile_id)
      .Field("subscriptionId", d.subscription_id)
      .Field("channel", d.channel)
      .Field("event", d.event)
      .Field("webhookId", d.webhook_id)
      .Field("attempts", d.attempts)
      .Field("lastStatus", d.last_status)
      .Field("failedAt", d.failed_at_ms)
      .Field("lastError", d.last_error);
  if (payload_as_json) {
    w.RawField("payload", d.payload);  // validated at ingest
  } else {
    w.Field("payload", d.payload);
  }
  w.EndObject();
  return out;
}

struct DeadLetterStore::ReadFd {
  int fd = -1;
  ~ReadFd() {
    if (fd >= 0) ::close(fd);
  }
};

namespace {

// Every field but the payload, which stays on disk.
DeadLetter Fields(const DeadLetter& d) {
  return {.id = d.id,
          .profile_id = d.profile_id,
          .subscription_id = d.subscription_id,
          .channel = d.channel,
          .event = d.event,
          .webhook_id = d.webhook_id,
          .attempts = d.attempts,
          .last_status = d.last_status,
          .last_error = d.last_error,
          .failed_at_ms = d.failed_at_ms};
}

}  // namespace

// The letter of an add record, parsed.
static bool DecodeAdd(simdjson::dom::element letter, DeadLetter& d) {
  std::string_view id;
  int64_t attempts = 0, status = 0;
  auto str = [&](const char* key, std::string& out) {
    std::string_view v;
    if (letter[key].get_string().get(v) != simdjson::SUCCESS) return false;
    out = std::string(v);
    return true;
  };
  if (letter["id"].get_string().get(id) != simdjson::SUCCESS ||
      std::from_chars(id.data(), id.data() + id.size(), d.id).ec != std::errc() ||
      !str("profileId", d.profile_id) || !str("subscriptionId", d.subscription_id) ||
      !str("channel", d.channel) || !str("event", d.event) || !str("webhookId", d.webhook_id) ||
      !str("lastError", d.last_error) || !str("payload", d.payload) ||
      letter["attempts"].get_int64().get(attempts) != simdjson::SUCCESS ||
      letter["lastStatus"].get_int64().get(status) != simdjson::SUCCESS ||
      letter["failedAt"].get_int64().get(d.failed_at_ms) != simdjson::SUCCESS) {
    return false;
  }
  d.attempts = static_cast<int>(attempts);
  d.last_status = static_cast<int>(status);
  return true;
}

bool DecodeDeadLetter(std::string_view json, DeadLetter& letter) {
  static thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  return parser.parse(json.data(), json.size()).get(root) == simdjson::SUCCESS &&
         DecodeAdd(root, letter);
}

namespace {

// `length` bytes of `fd` from `offset` into `out`.
absl::Status ReadAt(int fd, uint64_t offset, size_t length, const std::string& path,
                    std::string& out) {
  out.resize(length);
  size_t got = 0;
  while (got < length) {
    const ssize_t n = ::pread(fd, out.data() + got, length - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("pread", path);
    if (n == 0) return absl::DataLossError(Cat(path, ": ends before byte ", offset + length));
    got += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

DeadLetterStore::DeadLetterStore(Options options)
    : options_(std::move(options)),
      path_(options_.dir.empty() ? "" : options_.dir + "/" + kFile),
      compact_garbage_(options_.rewrite_after_bytes) {}

DeadLetterStore::~DeadLetterStore() = default;

int64_t DeadLetterStore::OldestKept() const {
  return options_.max_age.count() > 0 ? Now() - options_.max_age.count() : INT64_MIN;
}

int64_t DeadLetterStore::Now() const {
  if (options_.now_ms) return options_.now_ms();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

absl::StatusOr<std::unique_ptr<DeadLetterStore>> DeadLetterStore::Open(Options options) {
  std::unique_ptr<DeadLetterStore> store(new DeadLetterStore(std::move(options)));
  if (store->path_.empty()) return store;
  const std::string& dir = store->options_.dir;
  const auto& log = store->options_.log;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::UnavailableError(Cat("data_dir ", dir, ": ", ec.message()));
  // Nothing else runs yet; the locks are taken for the analysis' sake (and are cheap here).
  MutexLock write(store->write_mu_);
  {
    MutexLock lock(store->mu_);
    uint64_t offset = 0;
    auto read = ReadRecords(store->path_, [&](std::string_view r) HERALD_REQUIRES(store->mu_) {
      const auto length = static_cast<uint32_t>(r.size() + 10);  // "crc32hex " + record + "\n"
      if (!store->Apply(r, offset, length)) return false;
      offset += length;
      return true;
    });
    if (!read.ok()) return read.status();
    if (read->bad_bytes > 0) {
      if (log) {
        log(Cat("dead letters: ", store->path_, ": record ", read->bad_line,
                " is torn or corrupt; cutting ", read->bad_bytes,
                " byte(s) from there (the records before it are kept)"));
      }
      // Cutting takes no space: it works on a full disk too.
      if (::truncate(store->path_.c_str(), static_cast<off_t>(read->good_bytes)) != 0) {
        return ErrnoError("truncate", store->path_);
      }
    }
    store->file_bytes_ = read->good_bytes;
    if (auto s = store->OpenForAppend(); !s.ok()) return s;
  }
  bool rewrite;
  {
    MutexLock lock(store->mu_);
    rewrite =
        store->file_bytes_ - store->live_bytes_ > std::max<uint64_t>(1u << 20, store->live_bytes_);
  }
  // Mostly removed letters: rewrite it. Should that fail (a full disk), go on with it as it is.
  if (rewrite) {
    if (auto s = store->Compact(); !s.ok() && log) {
      log(Cat("dead letters: ", store->path_, " not rewritten (", ToStd(s.message()),
              "); going on with it as it is"));
    }
  }
  MutexLock lock(store->mu_);
  if (const auto over = store->OverBounds(0, {}); !over.empty()) {
    if (store->Append(RemoveRecord(over)).ok()) {
      store->file_bytes_ = store->file_.size();
      for (const uint64_t id : over) store->Erase(id);
      store->dropped_ += over.size();
      if (log) {
        log(Cat("dead letters: dropped the ", over.size(),
                " oldest letter(s), past max_mb or max_age_hours"));
      }
    }
  }
  return store;
}

absl::Status DeadLetterStore::OpenForAppend() {
  auto file = AppendFile::Open(path_, /*truncate=*/false, options_.sync);
  if (!file.ok()) return file.status();
  auto reader = std::make_shared<ReadFd>();
  reader->fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (reader->fd < 0) return ErrnoError("open", path_);
  file_ = *std::move(file);
  read_ = std::move(reader);
  return absl::OkStatus();
}

bool DeadLetterStore::Apply(std::string_view record, uint64_t offset, uint32_t length) {
  static thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  std::string_view op;
  if (parser.parse(record.data(), record.size()).get(root) != simdjson::SUCCESS ||
      root["op"].get_string().get(op) != simdjson::SUCCESS) {
    return false;
  }
  if (op == "add") {
    simdjson::dom::element letter;
    DeadLetter d;
    if (root["letter"].get(letter) != simdjson::SUCCESS || !DecodeAdd(letter, d)) return false;
    next_id_ = std::max(next_id_, d.id + 1);
    Erase(d.id);  // written twice: the later one counts
    live_bytes_ += length;
    letters_[d.id] = Entry{.letter = Fields(d), .offset = offset, .length = length};
    return true;
  }
  if (op == "remove") {
    simdjson::dom::array ids;
    if (root["ids"].get_array().get(ids) != simdjson::SUCCESS) return false;
    for (auto id : ids) {
      uint64_t v;
      if (id.get_uint64().get(v) != simdjson::SUCCESS) return false;
      Erase(v);
    }
    return true;
  }
  std::string_view profile;
  if (root["profileId"].get_string().get(profile) != simdjson::SUCCESS) return false;
  if (op == "disable") {
    if (std::find(disabled_.begin(), disabled_.end(), profile) == disabled_.end()) {
      disabled_.emplace_back(profile);
    }
    return true;
  }
  if (op == "enable") {
    std::erase(disabled_, profile);
    return true;
  }
  return false;
}

void DeadLetterStore::Erase(uint64_t id) {
  auto it = letters_.find(id);
  if (it == letters_.end()) return;
  live_bytes_ -= it->second.length;
  letters_.erase(it);
  replaying_.erase(id);
}

absl::Status DeadLetterStore::Append(const std::string& records) {
  if (!file_.is_open()) return absl::OkStatus();
  return file_.Append(records);
}

std::string DeadLetterStore::RemoveRecord(const std::vector<uint64_t>& ids) {
  std::string json;
  JsonWriter w(json);
  w.BeginObject().Field("op", "remove").Key("ids").BeginArray();
  for (const uint64_t id : ids) w.Uint(id);
  w.EndArray().EndObject();
  return FrameRecord(json);
}

std::vector<uint64_t> DeadLetterStore::OverBounds(uint64_t adding,
                                                  const std::vector<uint64_t>& leaving) const {
  std::vector<uint64_t> out;
  uint64_t bytes = live_bytes_ + adding;
  for (const uint64_t id : leaving) {
    if (auto it = letters_.find(id); it != letters_.end()) bytes -= it->second.length;
  }
  const int64_t oldest_kept = OldestKept();
  for (const auto& [id, e] : letters_) {
    const bool over = options_.max_bytes > 0 && bytes > options_.max_bytes;
    if (!over && e.letter.failed_at_ms >= oldest_kept) break;  // oldest first
    if (replaying_.contains(id) || std::find(leaving.begin(), leaving.end(), id) != leaving.end()) {
      continue;  // a replay settles it; `leaving` goes anyway
    }
    out.push_back(id);
    bytes -= e.length;
  }
  return out;
}

absl::Status DeadLetterStore::Add(std::vector<DeadLetter>& letters,
                                  std::span<const uint64_t> replaces) {
  // Writers take write_mu_ for the whole change and mu_ only around the index: the fdatasync (and
  // a rewrite) never holds back a listing, a replay or Contains().
  MutexLock write(write_mu_);
  std::vector<std::string> added;  // the records of `kept`
  std::vector<size_t> kept;        // of `letters`, those written
  std::vector<uint64_t> removed, over;
  size_t dropped_new = 0;  // of `kept`, the oldest, past max_bytes on their own
  uint64_t offset = 0;
  {
    MutexLock lock(mu_);
    for (size_t i = 0; i < letters.size(); ++i) {
      DeadLetter& d = letters[i];
      d.id = 0;
      const uint64_t replaced = i < replaces.size() ? replaces[i] : 0;
      if (replaced != 0) {
        // A replayed letter deleted meanwhile stays deleted: failing again brings it not back.
        if (!letters_.contains(replaced)) continue;
        removed.push_back(replaced);
      }
      d.id = next_id_++;
      added.push_back(AddRecord(d));
      kept.push_back(i);
    }
    if (kept.empty()) return absl::OkStatus();
    uint64_t adding = 0;
    for (const std::string& r : added) adding += r.size();
    over = OverBounds(adding, removed);
    // The batch alone may be past max_bytes (burials queued while a write was slow): once every
    // stored letter that may go is gone, its own oldest go too, never its newest.
    uint64_t bytes = live_bytes_ + adding;
    for (const auto* ids : {&removed, &over}) {
      for (const uint64_t id : *ids) {
        if (auto it = letters_.find(id); it != letters_.end()) bytes -= it->second.length;
      }
    }
    while (options_.max_bytes > 0 && bytes > options_.max_bytes && dropped_new + 1 < kept.size()) {
      bytes -= added[dropped_new].size();
      letters[kept[dropped_new]].id = 0;
      ++dropped_new;
    }
    offset = file_.size();
  }
  added.erase(added.begin(), added.begin() + static_cast<std::ptrdiff_t>(dropped_new));
  kept.erase(kept.begin(), kept.begin() + static_cast<std::ptrdiff_t>(dropped_new));
  std::string records;
  for (const std::string& r : added) records += r;
  removed.insert(removed.end(), over.begin(), over.end());
  if (!removed.empty()) records += RemoveRecord(removed);
  absl::Status s = Append(records);
  MutexLock lock(mu_);
  file_bytes_ = file_.size();
  if (!s.ok()) {
    for (DeadLetter& d : letters) d.id = 0;
    return s;
  }
  for (size_t k = 0; k < kept.size(); ++k) {
    const DeadLetter& d = letters[kept[k]];
    const auto length = static_cast<uint32_t>(added[k].size());
    Entry e{.letter = file_.is_open() ? Fields(d) : d, .offset = offset, .length = length};
    offset += length;
    live_bytes_ += e.length;
    letters_[d.id] = std::move(e);
  }
  for (const uint64_t id : removed) Erase(id);
  if (!over.empty() || dropped_new > 0) {
    dropped_ += over.size() + dropped_new;
    const int64_t now = Now();
    if (options_.log && now - last_drop_log_ms_ > 10'000) {
      last_drop_log_ms_ = now;
      options_.log(Cat("dead letters: dropping the oldest, past max_mb or max_age_hours (",
                       dropped_, " so far)"));
    }
  }
  CompactionMayBeDue();
  return absl::OkStatus();
}

absl::Status DeadLetterStore::LoadPayloads(const ReadFd* file, const std::string& path,
                                           std::vector<Entry>& entries) {
  if (file == nullptr) return absl::OkStatus();  // in memory: the payloads are there
  simdjson::dom::parser parser;
  std::string line;
  for (Entry& e : entries) {
    if (auto st = ReadAt(file->fd, e.offset, e.length, path, line); !st.ok()) return st;
    const auto record = UnframeRecord(line);
    simdjson::dom::element root, letter;
    DeadLetter d;
    if (!record || parser.parse(record->data(), record->size()).get(root) != simdjson::SUCCESS ||
        root["letter"].get(letter) != simdjson::SUCCESS || !DecodeAdd(letter, d) ||
        d.id != e.letter.id) {
      return absl::DataLossError(
          Cat(path, ": dead letter ", e.letter.id, " at byte ", e.offset, " does not read back"));
    }
    e.letter.payload = std::move(d.payload);
  }
  return absl::OkStatus();
}

absl::StatusOr<DeadLetterPage> DeadLetterStore::List(std::string_view profile_id, size_t page,
                                                     size_t size) const {
  std::vector<Entry> picked;
  std::shared_ptr<ReadFd> file;
  DeadLetterPage out;
  {
    MutexLock lock(mu_);
    file = read_;
    picked = PickPage(letters_, profile_id, page, size, OldestKept(), &out.total);
  }
  // The payloads are read without the lock: a rewrite meanwhile leaves `file` (the old one)
  // readable until the last reader lets it go.
  if (auto s = LoadPayloads(file.get(), path_, picked); !s.ok()) return s;
  out.results.reserve(picked.size());
  for (Entry& e : picked) out.results.push_back(std::move(e.letter));
  return out;
}

std::map<std::string, uint64_t> DeadLetterStore::CountByProfile() const {
  MutexLock lock(mu_);
  return CountPerProfile(letters_, OldestKept());
}

absl::StatusOr<std::vector<DeadLetter>> DeadLetterStore::BeginReplay(
    std::string_view profile_id, const std::vector<uint64_t>& ids) {
  std::vector<Entry> picked;
  std::shared_ptr<ReadFd> file;
  {
    MutexLock lock(mu_);
    file = read_;
    picked = PickReplay(letters_, replaying_, profile_id, ids, OldestKept());
  }
  std::vector<DeadLetter> out;
  out.reserve(picked.size());
  absl::Status s = LoadPayloads(file.get(), path_, picked);
  for (Entry& e : picked) out.push_back(std::move(e.letter));
  if (!s.ok()) {
    std::vector<uint64_t> taken;
    taken.reserve(out.size());
    for (const DeadLetter& d : out) taken.push_back(d.id);
    EndReplay(taken);
    return s;
  }
  return out;
}

absl::Status DeadLetterStore::Remove(const std::vector<uint64_t>& ids) {
  if (ids.empty()) return absl::OkStatus();
  MutexLock write(write_mu_);
  absl::Status s = Append(RemoveRecord(ids));
  MutexLock lock(mu_);
  file_bytes_ = file_.size();
  for (const uint64_t id : ids) {
    if (s.ok()) {
      Erase(id);
    } else {
      replaying_.erase(id);  // kept, and replayed again (a duplicate, not a loss)
    }
  }
  if (s.ok()) CompactionMayBeDue();
  return s;
}

void DeadLetterStore::EndReplay(const std::vector<uint64_t>& ids) {
  MutexLock lock(mu_);
  for (const uint64_t id : ids) replaying_.erase(id);
}

bool DeadLetterStore::Contains(uint64_t id) const {
  MutexLock lock(mu_);
  return letters_.contains(id);
}

absl::StatusOr<size_t> DeadLetterStore::Delete(std::string_view profile_id,
                                               const std::vector<uint64_t>& ids) {
  MutexLock write(write_mu_);
  std::vector<uint64_t> gone;
  {
    MutexLock lock(mu_);
    gone = PickDeletes(letters_, profile_id, ids);
  }
  if (gone.empty()) return 0;
  absl::Status s = Append(RemoveRecord(gone));
  MutexLock lock(mu_);
  file_bytes_ = file_.size();
  if (!s.ok()) return s;
  for (const uint64_t id : gone) Erase(id);
  CompactionMayBeDue();
  return gone.size();
}

bool DeadLetterStore::CompactionDue() const {
  if (!file_.is_open()) return false;
  const uint64_t garbage = file_bytes_ - std::min(file_bytes_, live_bytes_);
  return garbage > compact_garbage_ && garbage > live_bytes_;
}

void DeadLetterStore::CompactionMayBeDue() {
  // The owner calls CompactIfDue() on a thread of its choosing.
  if (options_.compaction_due && CompactionDue()) options_.compaction_due();
}

void DeadLetterStore::CompactIfDue() {
  MutexLock write(write_mu_);
  {
    MutexLock lock(mu_);
    if (!CompactionDue()) return;
  }
  if (auto s = Compact(); !s.ok()) {
    MutexLock lock(mu_);
    compact_garbage_ *= 2;  // try again once twice as much is removed
    if (options_.log) {
      options_.log(Cat("dead letters: ", path_, " not rewritten (", ToStd(s.message()),
                       "); trying again later"));
    }
    return;
  }
  MutexLock lock(mu_);
  compact_garbage_ = options_.rewrite_after_bytes;
}

absl::Status DeadLetterStore::Compact() {
  const std::string tmp = path_ + ".tmp";
  auto out = AppendFile::Open(tmp, /*truncate=*/true, options_.sync);
  if (!out.ok()) return out.status();
  auto fail = [&](absl::Status s) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    return s;
  };
  // What to copy, taken under mu_; the copy runs without it. Only writers change which letters
  // there are, and they wait on write_mu_, held here: every letter listed stays until the end.
  struct Live {
    uint64_t id, offset;
    uint32_t length;
  };
  std::vector<Live> live;
  std::vector<std::string> disabled;
  std::shared_ptr<ReadFd> from;
  {
    MutexLock lock(mu_);
    live.reserve(letters_.size());
    for (const auto& [id, e] : letters_) live.push_back({id, e.offset, e.length});
    disabled = disabled_;
    from = read_;
  }
  // Copies each live record as it is, a chunk at a time; new offsets apply only on success.
  std::vector<uint64_t> moved;
  moved.reserve(live.size());
  std::string chunk, line;
  uint64_t offset = 0;
  for (const Live& l : live) {
    if (!ReadAt(from->fd, l.offset, l.length, path_, line).ok() || !UnframeRecord(line)) {
      return fail(absl::DataLossError(Cat(path_, ": dead letter ", l.id, " does not read back")));
    }
    chunk += line;
    moved.push_back(offset);
    offset += l.length;
    if (chunk.size() >= (1u << 20)) {
      if (auto s = out->Append(chunk, /*sync=*/false); !s.ok()) return fail(s);
      chunk.clear();
    }
  }
  for (const auto& p : disabled) chunk += ProfileRecord("disable", p);
  if (auto s = out->Append(chunk, /*sync=*/true); !s.ok()) return fail(s);
  auto reader = std::make_shared<ReadFd>();
  reader->fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);  // the same file once renamed
  if (reader->fd < 0) return fail(ErrnoError("open", tmp));
  if (::rename(tmp.c_str(), path_.c_str()) != 0) return fail(ErrnoError("rename", tmp));
  (void)SyncDir(options_.dir);
  // Appends continue in the new file, under its own name when it reopens (errors name it).
  auto renamed = AppendFile::Open(path_, /*truncate=*/false, options_.sync);
  MutexLock lock(mu_);
  for (size_t i = 0; i < live.size(); ++i) letters_.at(live[i].id).offset = moved[i];
  file_ = renamed.ok() ? *std::move(renamed) : *std::move(out);
  file_bytes_ = file_.size();
  read_ = std::move(reader);
  return absl::OkStatus();
}

absl::Status DeadLetterStore::SetDisabled(std::string_view profile_id, bool disabled) {
  MutexLock write(write_mu_);
  {
    MutexLock lock(mu_);
    const bool now = std::find(disabled_.begin(), disabled_.end(), profile_id) != disabled_.end();
    if (now == disabled) return absl::OkStatus();
  }
  absl::Status s = Append(ProfileRecord(disabled ? "disable" : "enable", profile_id));
  MutexLock lock(mu_);
  file_bytes_ = file_.size();
  if (!s.ok()) return s;
  if (disabled) {
    disabled_.emplace_back(profile_id);
  } else {
    std::erase(disabled_, profile_id);
  }
  return absl::OkStatus();
}

std::vector<std::string> DeadLetterStore::disabled() const {
  MutexLock lock(mu_);
  return disabled_;
}

DeadLetterStore::Stats DeadLetterStore::stats() const {
  MutexLock lock(mu_);
  return {.letters = letters_.size(),
          .bytes = live_bytes_,
          .file_bytes = file_bytes_,
          .dropped = dropped_};
}

}  // namespace herald::deliver
