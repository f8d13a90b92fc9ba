#include "engine/store/config_journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "engine/common/framed_records.h"
#include "engine/common/json_writer.h"
#include "engine/common/strings.h"
#include "engine/model/json_codec.h"

namespace herald::store {
namespace {

constexpr char kJournal[] = "config.journal";
constexpr char kSnapshot[] = "config.snapshot";

std::string_view KindName(ConfigJournal::Kind kind) {
  switch (kind) {
    case ConfigJournal::Kind::kSecurity:
      return "security";
    case ConfigJournal::Kind::kProfile:
      return "profile";
    case ConfigJournal::Kind::kSubscription:
      return "subscription";
  }
  return "";
}

std::string PutRecord(ConfigJournal::Kind kind, const std::string& value) {
  return FrameRecord(Cat(R"({"op":"put","kind":")", KindName(kind), R"(","value":)", value, "}"));
}

// Applies a put: create, or update when it exists.
template <typename T, typename Create, typename Update>
absl::Status Upsert(const T& value, Create create, Update update) {
  absl::Status s = create(value);
  if (s.code() == absl::StatusCode::kAlreadyExists) s = update(value);
  return s;
}

}  // namespace

ConfigJournal::ConfigJournal(std::string dir, Engine& engine,
                             std::function<void(std::string_view)> log)
    : dir_(std::move(dir)), engine_(engine), log_(std::move(log)) {}

ConfigJournal::~ConfigJournal() = default;

absl::StatusOr<std::unique_ptr<ConfigJournal>> ConfigJournal::Open(
    const std::string& dir, Engine& engine, std::function<void(std::string_view)> log) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::UnavailableError(Cat("data_dir ", dir, ": ", ec.message()));
  std::unique_ptr<ConfigJournal> j(new ConfigJournal(dir, engine, std::move(log)));
  if (auto s = j->Replay(dir + "/" + kSnapshot, /*truncate_tail=*/false); !s.ok()) return s;
  if (auto s = j->Replay(dir + "/" + kJournal, /*truncate_tail=*/true); !s.ok()) return s;
  std::lock_guard lock(j->mu_);
  if (auto s = j->CompactLocked(); !s.ok()) return s;
  return j;
}

absl::Status ConfigJournal::Replay(const std::string& path, bool truncate_tail) {
  size_t line = 0;
  auto read = ReadRecords(path, [&](std::string_view json) {
    ++line;
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    std::string_view op, kind;
    if (parser.parse(json.data(), json.size()).get(root) != simdjson::SUCCESS ||
        root["op"].get_string().get(op) != simdjson::SUCCESS ||
        root["kind"].get_string().get(kind) != simdjson::SUCCESS) {
      return false;
    }
    absl::Status applied = absl::OkStatus();
    if (op == "put") {
      simdjson::dom::element value = root["value"];
      if (kind == "security") {
        auto s = model::DecodeSecurity(value);
        applied = s.ok() ? Upsert(
                               *s, [&](auto& v) { return engine_.CreateSecurity(v); },
                               [&](auto& v) { return engine_.UpdateSecurity(v); })
                         : s.status();
      } else if (kind == "profile") {
        auto p = model::DecodeProfile(value);
        applied = p.ok() ? Upsert(
                               p->profile, [&](auto& v) { return engine_.CreateProfile(v); },
                               [&](auto& v) { return engine_.UpdateProfile(v); })
                         : p.status();
      } else if (kind == "subscription") {
        auto s = model::DecodeSubscription(value);
        applied = s.ok()
                      ? Upsert(
                            s->subscription, [&](auto& v) { return engine_.CreateSubscription(v); },
                            [&](auto& v) { return engine_.UpdateSubscription(v); })
                      : s.status();
      } else {
        return false;
      }
    } else if (op == "delete") {
      std::string_view id;
      if (root["id"].get_string().get(id) != simdjson::SUCCESS) return false;
      const std::string key(id);
      if (kind == "security")
        applied = engine_.DeleteSecurity(key);
      else if (kind == "profile")
        applied = engine_.DeleteProfile(key);
      else if (kind == "subscription")
        applied = engine_.DeleteSubscription(key);
      else
        return false;
    } else {
      return false;
    }
    if (!applied.ok() && log_) {
      log_(Cat("store: ", path, ": record ", line,
               " no longer applies: ", ToStd(applied.message())));
    }
    return true;
  });
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

absl::Status ConfigJournal::CompactLocked() {
  std::string snapshot;
  for (const auto& s : engine_.ListSecurity()) {
    snapshot += PutRecord(Kind::kSecurity, model::EncodeSecurity(s, /*mask=*/false));
  }
  for (const auto& p : engine_.ListProfiles()) {
    snapshot += PutRecord(Kind::kProfile, model::EncodeProfile(p, /*mask=*/false));
  }
  auto subs = engine_.ListSubscriptions();
  // Oldest first, so creation order (a matching tie-break) survives the restart.
  for (auto it = subs.rbegin(); it != subs.rend(); ++it) {
    snapshot += PutRecord(Kind::kSubscription, model::EncodeSubscription(*it, nullptr));
  }
  if (auto s = WriteFileAtomically(dir_, kSnapshot, snapshot); !s.ok()) return s;
  // The snapshot holds everything: start an empty journal.
  const std::string journal = dir_ + "/" + kJournal;
  auto file = AppendFile::Open(journal, /*truncate=*/true);
  if (!file.ok()) return file.status();
  // Adopted before the sync: the old descriptor's end is gone with the truncation, and should
  // the sync fail the new one refuses writes.
  file_ = *std::move(file);
  if (auto s = file_.Sync(); !s.ok()) return s;
  return SyncDir(dir_);
}

absl::Status ConfigJournal::Compact() {
  std::lock_guard lock(mu_);
  return CompactLocked();
}

absl::Status ConfigJournal::Append(const std::string& record) {
  std::lock_guard lock(mu_);
  // A failed write is taken back, so a torn fragment cannot swallow the next record at replay
  // and a change answered 503 does not come back at restart.
  return file_.Append(record);
}

absl::Status ConfigJournal::Put(const SecuritySetting& security) {
  return Append(PutRecord(Kind::kSecurity, model::EncodeSecurity(security, /*mask=*/false)));
}
absl::Status ConfigJournal::Put(const NotificationProfile& profile) {
  return Append(PutRecord(Kind::kProfile, model::EncodeProfile(profile, /*mask=*/false)));
}
absl::Status ConfigJournal::Put(const Subscription& subscription) {
  return Append(PutRecord(Kind::kSubscription, model::EncodeSubscription(subscription, nullptr)));
}
absl::Status ConfigJournal::PutMany(const std::vector<Subscription>& subscriptions) {
  std::string records;
  for (const auto& s : subscriptions) {
    records += PutRecord(Kind::kSubscription, model::EncodeSubscription(s, nullptr));
  }
  return Append(records);
}

absl::Status ConfigJournal::PutTogether(const SecuritySetting* security,
                                        const NotificationProfile* profile,
                                        const Subscription* subscription) {
  std::string records;
  if (security) records += PutRecord(Kind::kSecurity, model::EncodeSecurity(*security, false));
  if (profile) records += PutRecord(Kind::kProfile, model::EncodeProfile(*profile, /*mask=*/false));
  if (subscription) {
    records += PutRecord(Kind::kSubscription, model::EncodeSubscription(*subscription, nullptr));
  }
  return Append(records);
}

absl::Status ConfigJournal::Delete(Kind kind, std::string_view id) {
  std::string json;
  JsonWriter(json)
      .BeginObject()
      .Field("op", "delete")
      .Field("kind", KindName(kind))
      .Field("id", id)
      .EndObject();
  return Append(FrameRecord(json));
}

}  // namespace herald::store
