// The config seam (DESIGN §7): certificates, security settings, profiles and subscriptions as
// herald's own versioned storage records (engine/store/config_records.h), keyed by kind and id. The
// embedded journal implements it; the JetStream mode implements it on KV. Every write carries a
// revision: one counter for the whole store that grows with every change, so "the state at revision
// N" and "the changes after N" mean the same on every backend.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace herald::store {

// In the order List gives and references resolve (a profile names a certificate); stored by name.
enum class ConfigKind : uint8_t { kCertificate, kSecurity, kProfile, kSubscription };
// "certificate", "security", "profile", "subscription"
std::string_view ConfigKindName(ConfigKind kind);
std::optional<ConfigKind> ParseConfigKind(std::string_view name);

// No condition on the stored revision.
inline constexpr uint64_t kAnyRevision = UINT64_MAX;

// One change: a put when `value` is set, else a delete. `expected_revision` is the entry's
// revision the writer read (0: it must not exist), or kAnyRevision.
struct ConfigWrite {
  ConfigKind kind = ConfigKind::kSubscription;
  std::string id;
  std::optional<std::string> value;
  uint64_t expected_revision = kAnyRevision;
};

struct ConfigEntry {
  ConfigKind kind = ConfigKind::kSubscription;
  std::string id;
  std::string value;      // empty when deleted
  uint64_t revision = 0;  // of the change that wrote it
  uint64_t created = 0;   // revision of its creation: List's order within a kind
  bool deleted = false;
};

class ConfigStore {
 public:
  virtual ~ConfigStore() = default;

  // Applies the writes as one change, all or none, durable once it returns OK; returns the
  // revision of the last. A write whose expected revision does not match fails the whole
  // change with FailedPrecondition (DESIGN §10: a lost race).
  virtual absl::StatusOr<uint64_t> Commit(std::span<const ConfigWrite> writes) = 0;

  absl::StatusOr<uint64_t> Put(ConfigKind kind, std::string_view id, std::string value,
                               uint64_t expected_revision = kAnyRevision) {
    const ConfigWrite w{kind, std::string(id), std::move(value), expected_revision};
    return Commit({&w, 1});
  }
  absl::StatusOr<uint64_t> Delete(ConfigKind kind, std::string_view id,
                                  uint64_t expected_revision = kAnyRevision) {
    const ConfigWrite w{kind, std::string(id), std::nullopt, expected_revision};
    return Commit({&w, 1});
  }

  // What exists: certificates, security settings, profiles, then subscriptions, each in creation
  // order (so references resolve in order, and subscription creation order, a matching tie-break,
  // survives).
  virtual std::vector<ConfigEntry> List() const = 0;
  // The entry stored under kind and id, if it exists.
  virtual std::optional<ConfigEntry> Get(ConfigKind kind, std::string_view id) const = 0;

  // Calls `fn` with every change after `from_revision` that is already stored, then with each
  // new change as it is committed, until the store is destroyed. OutOfRange when the changes
  // since `from_revision` are no longer known (List again).
  using Watcher = std::function<void(const ConfigEntry&)>;
  virtual absl::Status Watch(uint64_t from_revision, Watcher fn) = 0;

  virtual uint64_t revision() const = 0;  // of the last change committed

  // True when other processes write the store too (JetStream's KV): a writer then states the
  // revision its change is based on, and learns of the others' changes through Watch.
  virtual bool shared() const { return false; }

  // At a clean stop, after the last change: the embedded journal compacts.
  virtual absl::Status Close() { return absl::OkStatus(); }
};

}  // namespace herald::store
