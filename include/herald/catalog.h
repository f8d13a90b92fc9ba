// The catalog: every channel and its events (DESIGN §6), loaded from JSON data so an operator can
// add a channel or event without recompiling. A (channel, event) pair resolves to a dense id
// through a perfect hash; aliases (e.g. KAKAO_BRAND_MESSAGE) resolve to their channel's pairs.
//
// Immutable once loaded; share it freely between threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace herald {

namespace internal {
class PairIndex;
}

// JSON pointers (RFC 6901) into one native payload item, tried in order; the first string wins.
struct RoutingKeyPointers {
  std::vector<std::string> application_id;
  std::vector<std::string> entity_id;
  std::vector<std::string> resource;
  std::vector<std::string> user;
};

struct EventInfo {
  std::string event;                // canonical value, e.g. "DELIVERY"
  std::string name;                 // English display name
  std::string name_ja;              // Japanese display name
  RoutingKeyPointers routing_keys;  // effective pointers (the event's override or the channel's)
  uint32_t pair_id = 0;             // dense id of (channel, event)
};

struct ChannelInfo {
  std::string channel;  // API name, e.g. "SMS"
  std::string name;
  std::string name_ja;
  std::vector<std::string> aliases;
  RoutingKeyPointers routing_keys;
  std::vector<EventInfo> events;
};

class Catalog {
 public:
  static constexpr int kMaxEventsPerChannel = 128;

  // Loads and validates a catalog file; errors name the file and the offending entry.
  static absl::StatusOr<std::shared_ptr<const Catalog>> Load(const std::string& path);
  // Same from text; `source` names it in errors.
  static absl::StatusOr<std::shared_ptr<const Catalog>> Parse(std::string_view json,
                                                              std::string_view source);
  ~Catalog();

  const std::vector<ChannelInfo>& channels() const { return channels_; }
  uint32_t pair_count() const { return static_cast<uint32_t>(pairs_.size()); }

  // Channel index for an API name or alias, or -1.
  int FindChannel(std::string_view name_or_alias) const;
  // Event index within `channel`, or -1.
  int FindEvent(int channel, std::string_view event) const;

  // Dense pair id through the perfect hash, or -1 when the pair is not in the catalog.
  // Hot path: no allocation, one probe, one verification.
  int64_t PairId(std::string_view channel, std::string_view event) const;

  int channel_of(uint32_t pair_id) const { return pairs_[pair_id].channel; }
  int event_of(uint32_t pair_id) const { return pairs_[pair_id].event; }
  const ChannelInfo& channel_info(uint32_t pair_id) const { return channels_[channel_of(pair_id)]; }
  const EventInfo& event_info(uint32_t pair_id) const {
    return channels_[channel_of(pair_id)].events[event_of(pair_id)];
  }

 private:
  struct Pair {
    uint16_t channel;
    uint16_t event;
  };
  Catalog();
  absl::Status Index(std::string_view source);

  std::vector<ChannelInfo> channels_;
  std::vector<Pair> pairs_;
  std::unique_ptr<internal::PairIndex> index_;
};

}  // namespace herald
