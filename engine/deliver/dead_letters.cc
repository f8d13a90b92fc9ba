#include "engine/deliver/dead_letters.h"

#include <fcntl.h>
#include <simdjson.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <set>

#include "engine/common/framed_records.h"
#include "engine/common/strings.h"
#include "engine/model/json_codec.h"

namespace herald::deliver {
namespace {

constexpr char kFile[] = "dead-letters.log";

std::string AddRecord(const DeadLetter& d) {
  // The payload as a string: it may span lines, and records are one line each.
  return FrameRecord(
      Cat(R"({"op":"add","letter":)", EncodeDeadLetter(d, /*payload_as_json=*/false), "}"));
}

std::string ProfileRecord(std::string_view op, std::string_view profile_id) {
  std::string json = Cat(R"({"op":")", op, R"(","profileId":)");
  model::AppendJsonString(json, profile_id);
  json += "}";
  return FrameRecord(json);
}

}  // namespace

std::string EncodeDeadLetter(const DeadLetter& d, bool payload_as_json) {
  std::string out = Cat(R"({"id":")", d.id, R"(","profileId":)");
  model::AppendJsonString(out, d.profile_id);
  out += R"(,"subscriptionId":)";
  model::AppendJsonString(out, d.subscription_id);
  out += R"(,"channel":)";
  model::AppendJsonString(out, d.channel);
  out += R"(,"event":)";
  model::AppendJsonString(out, d.event);
  out += R"(,"webhookId":)";
  model::AppendJsonString(out, d.webhook_id);
  out += Cat(R"(,"attempts":)", d.attempts, R"(,"lastStatus":)", d.last_status, R"(,"failedAt":)",
             d.failed_at_ms, R"(,"lastError":)");
  model::AppendJsonString(out, d.last_error);
  out += R"(,"payload":)";
  if (payload_as_json) {
    out += d.payload;  // validated at ingest
  } else {
    model::AppendJsonString(out, d.payload);
  }
  out += "}";
  return out;
}

DeadLetterStore::~DeadLetterStore() = default;

absl::StatusOr<std::unique_ptr<DeadLetterStore>> DeadLetterStore::Open(
    const std::string& dir, std::function<void(std::string_view)> log, SyncFn sync) {
  if (dir.empty()) return std::unique_ptr<DeadLetterStore>(new DeadLetterStore(""));
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::UnavailableError(Cat("data_dir ", dir, ": ", ec.message()));
  std::unique_ptr<DeadLetterStore> store(new DeadLetterStore(dir + "/" + kFile));
  auto read = ReadRecords(store->path_, [&](std::string_view r) { return store->Apply(r); });
  if (!read.ok()) return read.status();
  if (read->bad_bytes > 0 && log) {
    log(Cat("dead letters: ", store->path_, ": record ", read->bad_line,
            " is torn or corrupt; cutting ", read->bad_bytes,
            " byte(s) from there (the records before it are kept)"));
  }
  // Compact: the live set into a new file, then swap it in.
  std::string live;
  for (const auto& [id, d] : store->letters_) live += AddRecord(d);
  for (const auto& p : store->disabled_) live += ProfileRecord("disable", p);
  if (auto s = WriteFileAtomically(dir, kFile, live); !s.ok()) return s;
  auto file = AppendFile::Open(store->path_, /*truncate=*/false, sync);
  if (!file.ok()) return file.status();
  store->file_ = *std::move(file);
  return store;
}

bool DeadLetterStore::Apply(std::string_view record) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  std::string_view op;
  if (parser.parse(record.data(), record.size()).get(root) != simdjson::SUCCESS ||
      root["op"].get_string().get(op) != simdjson::SUCCESS) {
    return false;
  }
  auto str = [&](const char* key, std::string& out) {
    std::string_view v;
    if (root[key].get_string().get(v) != simdjson::SUCCESS) return false;
    out = std::string(v);
    return true;
  };
  if (op == "add") {
    simdjson::dom::element letter;
    std::string_view id;
    DeadLetter d;
    int64_t attempts = 0, status = 0;
    auto str = [&](const char* key, std::string& out) {
      std::string_view v;
      if (letter[key].get_string().get(v) != simdjson::SUCCESS) return false;
      out = std::string(v);
      return true;
    };
    if (root["letter"].get(letter) != simdjson::SUCCESS ||
        letter["id"].get_string().get(id) != simdjson::SUCCESS ||
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
    next_id_ = std::max(next_id_, d.id + 1);
    letters_[d.id] = std::move(d);
    return true;
  }
  if (op == "remove") {
    simdjson::dom::array ids;
    if (root["ids"].get_array().get(ids) != simdjson::SUCCESS) return false;
    for (auto id : ids) {
      uint64_t v;
      if (id.get_uint64().get(v) != simdjson::SUCCESS) return false;
      letters_.erase(v);
    }
    return true;
  }
  std::string profile;
  if (!str("profileId", profile)) return false;
  if (op == "disable") {
    if (std::find(disabled_.begin(), disabled_.end(), profile) == disabled_.end()) {
      disabled_.push_back(profile);
    }
    return true;
  }
  if (op == "enable") {
    std::erase(disabled_, profile);
    return true;
  }
  return false;
}

absl::Status DeadLetterStore::Append(const std::string& records) {
  if (!file_.is_open()) return absl::OkStatus();
  return file_.Append(records);
}

std::string DeadLetterStore::RemoveRecord(const std::vector<uint64_t>& ids) {
  std::string json = R"({"op":"remove","ids":[)";
  for (size_t i = 0; i < ids.size(); ++i) json += Cat(i ? "," : "", ids[i]);
  json += "]}";
  return FrameRecord(json);
}

absl::Status DeadLetterStore::Add(std::vector<DeadLetter>& letters,
                                  const std::vector<uint64_t>& replaced) {
  std::lock_guard lock(mu_);
  std::string records;
  for (auto& d : letters) {
    d.id = next_id_++;
    records += AddRecord(d);
  }
  if (!replaced.empty()) records += RemoveRecord(replaced);
  if (auto s = Append(records); !s.ok()) return s;
  for (auto& d : letters) letters_[d.id] = d;
  for (const uint64_t id : replaced) {
    letters_.erase(id);
    replaying_.erase(id);
  }
  return absl::OkStatus();
}

DeadLetterPage DeadLetterStore::List(std::string_view profile_id, size_t page, size_t size) const {
  std::lock_guard lock(mu_);
  DeadLetterPage out;
  const size_t first = page * size;
  for (const auto& [id, d] : letters_) {
    if (!profile_id.empty() && d.profile_id != profile_id) continue;
    if (out.total >= first && out.results.size() < size) out.results.push_back(d);
    ++out.total;
  }
  return out;
}

std::vector<DeadLetter> DeadLetterStore::BeginReplay(std::string_view profile_id,
                                                     const std::vector<uint64_t>& ids) {
  std::lock_guard lock(mu_);
  std::vector<DeadLetter> out;
  auto take = [&](const DeadLetter& d) {
    if (d.profile_id == profile_id && replaying_.insert(d.id).second) out.push_back(d);
  };
  if (ids.empty()) {
    for (const auto& [id, d] : letters_) take(d);
  } else {
    // Each once, however often it is named.
    for (const uint64_t id : std::set<uint64_t>(ids.begin(), ids.end())) {
      if (auto it = letters_.find(id); it != letters_.end()) take(it->second);
    }
  }
  return out;
}

absl::Status DeadLetterStore::Remove(const std::vector<uint64_t>& ids) {
  if (ids.empty()) return absl::OkStatus();
  std::lock_guard lock(mu_);
  absl::Status s = Append(RemoveRecord(ids));
  for (const uint64_t id : ids) {
    replaying_.erase(id);
    if (s.ok()) letters_.erase(id);  // else kept, and replayed again (a duplicate, not a loss)
  }
  return s;
}

void DeadLetterStore::EndReplay(const std::vector<uint64_t>& ids) {
  std::lock_guard lock(mu_);
  for (const uint64_t id : ids) replaying_.erase(id);
}

absl::Status DeadLetterStore::SetDisabled(std::string_view profile_id, bool disabled) {
  std::lock_guard lock(mu_);
  const bool now = std::find(disabled_.begin(), disabled_.end(), profile_id) != disabled_.end();
  if (now == disabled) return absl::OkStatus();
  if (auto s = Append(ProfileRecord(disabled ? "disable" : "enable", profile_id)); !s.ok()) {
    return s;
  }
  if (disabled) {
    disabled_.emplace_back(profile_id);
  } else {
    std::erase(disabled_, profile_id);
  }
  return absl::OkStatus();
}

std::vector<std::string> DeadLetterStore::disabled() const {
  std::lock_guard lock(mu_);
  return disabled_;
}

}  // namespace herald::deliver
