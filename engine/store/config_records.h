// herald's own storage records for the config (DESIGN §7): what a ConfigStore keeps, whichever
// backend. They are not the management API's wire JSON: every field is stored as the engine holds
// it (secrets unmasked, names canonical), and each record carries its format version "v", so the
// API may change its shapes while stored data keeps opening. Version 1 is the only one written;
// the embedded journal migrates what releases before versioned records wrote
// (engine/store/config_journal.cc).
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "engine/store/config_store.h"
#include "herald/engine.h"

namespace herald::store {

inline constexpr int kConfigRecordVersion = 1;

std::string EncodeRecord(const ClientCertificate& certificate);
std::string EncodeRecord(const SecuritySetting& security);
std::string EncodeRecord(const NotificationProfile& profile);
std::string EncodeRecord(const Subscription& subscription);

// DataLoss when the record is malformed or of a version this release does not know.
absl::StatusOr<ClientCertificate> DecodeCertificateRecord(std::string_view record);
absl::StatusOr<SecuritySetting> DecodeSecurityRecord(std::string_view record);
absl::StatusOr<NotificationProfile> DecodeProfileRecord(std::string_view record);
absl::StatusOr<Subscription> DecodeSubscriptionRecord(std::string_view record);

// A put of `value` as a write.
ConfigWrite PutWrite(const ClientCertificate& certificate,
                     uint64_t expected_revision = kAnyRevision);
ConfigWrite PutWrite(const SecuritySetting& security, uint64_t expected_revision = kAnyRevision);
ConfigWrite PutWrite(const NotificationProfile& profile, uint64_t expected_revision = kAnyRevision);
ConfigWrite PutWrite(const Subscription& subscription, uint64_t expected_revision = kAnyRevision);
ConfigWrite DeleteWrite(ConfigKind kind, std::string_view id,
                        uint64_t expected_revision = kAnyRevision);

// Makes the engine hold what `entry` says: a put creates, or updates what exists; a delete
// removes. What it had to change to load (a profile naming a certificate that does not exist,
// from before certificates: loaded without it) is said through `log`.
absl::Status ApplyEntry(Engine& engine, const ConfigEntry& entry,
                        const std::function<void(std::string_view)>& log = {});

// Loads everything the store holds into the engine, in List's order. An entry that no longer
// applies (its channel left the catalog, say) is reported through `log` and skipped; the others
// load. Returns how many loaded.
size_t LoadConfig(const ConfigStore& store, Engine& engine,
                  const std::function<void(std::string_view)>& log);

}  // namespace herald::store
