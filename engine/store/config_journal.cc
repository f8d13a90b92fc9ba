#include "engine/store/config_journal.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "engine/common/framed_records.h"
#include "engine/common/json_writer.h"
#include "engine/common/strings.h"
#include "engine/model/json_codec.h"
#include "engine/store/config_records.h"
#include "simdjson.h"

namespace herald::store {
namespace {

constexpr char kJournal[] = "config.journal";
constexpr char kSnapshot[] = "config.snapshot";

void WriteChange(JsonWriter& w, const ConfigEntry& c) {
  w.BeginObject().Field("rev", c.revision).Field("created", c.created);
  w.Field("kind", ConfigKindName(c.kind)).Field("id", c.id);
  if (c.deleted) {
    w.Field("deleted", true);
  } else {
    w.Field("value", c.value);
  }
  w.EndObject();
}

// `revision`: the store's, on the snapshot's last line; 0 elsewhere.
std::string Line(std::span<const ConfigEntry> changes, uint64_t revision = 0) {
  std::string json;
  JsonWriter w(json);
  w.BeginObject().Field("v", kConfigRecordVersion).Key("changes").BeginArray();
  for (const ConfigEntry& c : changes) WriteChange(w, c);
  w.EndArray();
  if (revision != 0) w.Field("revision", revision);
  w.EndObject();
  return FrameRecord(json);
}

// A line of the format before versioned records: {"op":"put","kind":K,"value":<API JSON>} or
// {"op":"delete","kind":K,"id":…}. Returns the change it made as a storage record; nullopt with
// `why` set for a record whose value no longer decodes (skipped, as that release did); false in
// `is_record` for a line that is not one (corrupt).
std::optional<ConfigEntry> MigrateLine(simdjson::dom::element root, bool* is_record,
                                       std::string* why) {
  *is_record = false;
  std::string_view op, kind_name;
  if (root["op"].get_string().get(op) != simdjson::SUCCESS ||
      root["kind"].get_string().get(kind_name) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  const std::optional<ConfigKind> kind = ParseConfigKind(kind_name);
  if (!kind || (op != "put" && op != "delete")) return std::nullopt;
  ConfigEntry c;
  c.kind = *kind;
  if (op == "delete") {
    std::string_view id;
    if (root["id"].get_string().get(id) != simdjson::SUCCESS) return std::nullopt;
    *is_record = true;
    c.id = id;
    c.deleted = true;
    return c;
  }
  *is_record = true;
  simdjson::dom::element value = root["value"];
  auto fail = [&](const absl::Status& s) {
    *why = ToStd(s.message());
    return std::nullopt;
  };
  switch (*kind) {
    case ConfigKind::kCertificate:
      return fail(absl::DataLossError("certificates came after versioned records"));
    case ConfigKind::kSecurity: {
      auto s = model::DecodeSecurity(value);
      if (!s.ok()) return fail(s.status());
      c.id = s->auth_id;
      c.value = EncodeRecord(*s);
      break;
    }
    case ConfigKind::kProfile: {
      auto p = model::DecodeProfile(value);
      if (!p.ok()) return fail(p.status());
      c.id = p->profile.profile_id;
      c.value = EncodeRecord(p->profile);
      break;
    }
    case ConfigKind::kSubscription: {
      auto s = model::DecodeSubscription(value);
      if (!s.ok()) return fail(s.status());
      c.id = s->subscription.subscription_id;
      c.value = EncodeRecord(s->subscription);
      break;
    }
  }
  return c;
}

}  // namespace

ConfigJournal::ConfigJournal(std::string dir, std::function<void(std::string_view)> log,
                             SyncFn sync)
    : dir_(std::move(dir)), log_(std::move(log)), sync_(sync) {}

ConfigJournal::~ConfigJournal() = default;

absl::StatusOr<std::unique_ptr<ConfigJournal>> ConfigJournal::Open(
    const std::string& dir, std::function<void(std::string_view)> log, SyncFn sync) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::UnavailableError(Cat("data_dir ", dir, ": ", ec.message()));
  std::unique_ptr<ConfigJournal> j(new ConfigJournal(dir, std::move(log), sync));
  MutexLock lock(j->mu_);
  if (auto s = j->Replay(dir + "/" + kSnapshot, /*truncate_tail=*/false); !s.ok()) return s;
  if (auto s = j->Replay(dir + "/" + kJournal, /*truncate_tail=*/true); !s.ok()) return s;
  if (j->stats_.migrated > 0 && j->log_) {
    j->log_(Cat("store: migrated ", j->stats_.migrated,
                " config record(s) written before versioned records to format version ",
                kConfigRecordVersion));
  }
  j->opened_at_ = j->revision_;
  if (auto s = j->CompactLocked(); !s.ok()) return s;
  return j;
}

void ConfigJournal::Apply(const ConfigEntry& change) {
  revision_ = std::max(revision_, change.revision);
  const Key key{change.kind, change.id};
  auto it = entries_.find(key);
  ConfigEntry entry = change;
  // An update keeps its place in creation order; a put after a delete is a new creation.
  if (entry.created == 0) {
    entry.created =
        it != entries_.end() && !it->second.deleted ? it->second.created : change.revision;
  }
  entries_[key] = std::move(entry);
}

bool ConfigJournal::ReadLine(std::string_view line) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(line.data(), line.size()).get(root) != simdjson::SUCCESS) return false;
  int64_t version = 0;
  if (root["v"].get_int64().get(version) != simdjson::SUCCESS) {
    bool is_record = false;
    std::string why;
    std::optional<ConfigEntry> change = MigrateLine(root, &is_record, &why);
    if (!is_record) return false;
    if (!change) {
      if (log_) log_(Cat("store: a config record no longer applies and is dropped: ", why));
      return true;
    }
    change->revision = revision_ + 1;
    Apply(*change);
    ++stats_.migrated;
    return true;
  }
  if (version != kConfigRecordVersion) return false;
  // The snapshot's last line says the revision it was taken at: revisions never go back, even
  // when the newest changes were deletes the snapshot no longer holds.
  uint64_t at = 0;
  if (root["revision"].get_uint64().get(at) == simdjson::SUCCESS) {
    revision_ = std::max(revision_, at);
  }
  simdjson::dom::array changes;
  if (root["changes"].get_array().get(changes) != simdjson::SUCCESS) return false;
  std::vector<ConfigEntry> read;
  for (simdjson::dom::element c : changes) {
    ConfigEntry& e = read.emplace_back();
    std::string_view kind, id, value;
    uint64_t rev = 0, created = 0;
    bool deleted = false;
    if (c["rev"].get_uint64().get(rev) != simdjson::SUCCESS ||
        c["created"].get_uint64().get(created) != simdjson::SUCCESS ||
        c["kind"].get_string().get(kind) != simdjson::SUCCESS ||
        c["id"].get_string().get(id) != simdjson::SUCCESS) {
      return false;
    }
    const std::optional<ConfigKind> k = ParseConfigKind(kind);
    if (!k) return false;
    if (c["deleted"].get_bool().get(deleted) != simdjson::SUCCESS &&
        c["value"].get_string().get(value) != simdjson::SUCCESS) {
      return false;
    }
    e.kind = *k;
    e.id = id;
    e.value = value;
    e.revision = rev;
    e.created = created;
    e.deleted = deleted;
  }
  for (const ConfigEntry& e : read) Apply(e);  // a line applies whole or not at all
  return true;
}

absl::Status ConfigJournal::Replay(const std::string& path, bool truncate_tail) {
  auto read =
      ReadRecords(path, [&](std::string_view line) HERALD_REQUIRES(mu_) { return ReadLine(line); });
  if (!read.ok()) return read.status();
  stats_.replayed += read->records;
  if (read->bad_bytes == 0) return absl::OkStatus();
  if (!truncate_tail) {
    return absl::DataLossError(Cat(path, ": record ", read->bad_line, " is corrupt"));
  }
  stats_.truncated_bytes += read->bad_bytes;
  if (log_) {
    log_(Cat("store: ", path, ": record ", read->bad_line, " is torn or corrupt; cutting ",
             read->bad_bytes, " byte(s) from there (the records before it are kept)"));
  }
  if (::truncate(path.c_str(), static_cast<off_t>(read->good_bytes)) != 0) {
    return ErrnoError("truncate", path);
  }
  return absl::OkStatus();
}

std::vector<ConfigEntry> ConfigJournal::List() const {
  std::vector<ConfigEntry> out;
  {
    MutexLock lock(mu_);
    for (const auto& [key, entry] : entries_) {
      if (!entry.deleted) out.push_back(entry);
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const ConfigEntry& a, const ConfigEntry& b) {
    return a.kind != b.kind ? a.kind < b.kind : a.created < b.created;
  });
  return out;
}

std::optional<ConfigEntry> ConfigJournal::Get(ConfigKind kind, std::string_view id) const {
  MutexLock lock(mu_);
  auto it = entries_.find(Key(kind, std::string(id)));
  if (it == entries_.end() || it->second.deleted) return std::nullopt;
  return it->second;
}

uint64_t ConfigJournal::revision() const {
  MutexLock lock(mu_);
  return revision_;
}

absl::Status ConfigJournal::CompactLocked() {
  std::string snapshot;
  std::vector<ConfigEntry> kept;
  for (const auto& [key, entry] : entries_) {
    if (!entry.deleted) kept.push_back(entry);
  }
  std::sort(kept.begin(), kept.end(),
            [](const ConfigEntry& a, const ConfigEntry& b) { return a.revision < b.revision; });
  for (const ConfigEntry& e : kept) snapshot += Line({&e, 1});
  if (revision_ != 0) snapshot += Line({}, revision_);
  if (auto s = WriteFileAtomically(dir_, kSnapshot, snapshot); !s.ok()) return s;
  // The snapshot holds everything: start an empty journal.
  const std::string journal = dir_ + "/" + kJournal;
  auto file = AppendFile::Open(journal, /*truncate=*/true, sync_);
  if (!file.ok()) return file.status();
  // Adopted before the sync: the old descriptor's end is gone with the truncation, and should
  // the sync fail the new one refuses writes.
  file_ = *std::move(file);
  if (auto s = file_.Sync(); !s.ok()) return s;
  return SyncDir(dir_);
}

absl::Status ConfigJournal::Compact() {
  MutexLock lock(mu_);
  return CompactLocked();
}

absl::StatusOr<uint64_t> ConfigJournal::Commit(std::span<const ConfigWrite> writes) {
  if (writes.empty()) return absl::InvalidArgumentError("a change needs at least one write");
  MutexLock lock(mu_);
  std::vector<ConfigEntry> changes;
  changes.reserve(writes.size());
  uint64_t rev = revision_;
  for (const ConfigWrite& w : writes) {
    auto it = entries_.find(Key{w.kind, w.id});
    const bool exists = it != entries_.end() && !it->second.deleted;
    if (w.expected_revision != kAnyRevision) {
      const uint64_t have = exists ? it->second.revision : 0;
      if (have != w.expected_revision) {
        return absl::FailedPreconditionError(Cat(ConfigKindName(w.kind), " ", w.id,
                                                 " is at revision ", have, ", not ",
                                                 w.expected_revision, ": it changed meanwhile"));
      }
    }
    ConfigEntry& c = changes.emplace_back();
    c.kind = w.kind;
    c.id = w.id;
    c.revision = ++rev;
    c.created = exists ? it->second.created : c.revision;
    c.deleted = !w.value.has_value();
    if (w.value) c.value = *w.value;
  }
  // A failed write is taken back, so a torn fragment cannot swallow the next record at replay
  // and a change answered 503 does not come back at restart.
  if (auto s = file_.Append(Line(changes)); !s.ok()) return s;
  for (const ConfigEntry& c : changes) {
    Apply(c);
    for (const Watcher& watch : watchers_) watch(c);
  }
  return revision_;
}

absl::Status ConfigJournal::Watch(uint64_t from_revision, Watcher fn) {
  MutexLock lock(mu_);
  if (from_revision != 0 && from_revision < opened_at_) {
    return absl::OutOfRangeError(
        Cat("the changes before revision ", opened_at_, " are compacted; list the config instead"));
  }
  std::vector<const ConfigEntry*> since;
  for (const auto& [key, entry] : entries_) {
    if (entry.revision > from_revision && !(from_revision == 0 && entry.deleted)) {
      since.push_back(&entry);
    }
  }
  std::sort(since.begin(), since.end(),
            [](const ConfigEntry* a, const ConfigEntry* b) { return a->revision < b->revision; });
  for (const ConfigEntry* e : since) fn(*e);
  watchers_.push_back(std::move(fn));
  return absl::OkStatus();
}

}  // namespace herald::store
