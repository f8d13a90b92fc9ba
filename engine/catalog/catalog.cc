// Catalog loading and validation (DOM parsing: this is cold, run once at start) and the perfect
// hash over (channel-or-alias, event) pairs that the hot path resolves every event through.
#include "herald/catalog.h"

#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/common/hash.h"
#include "engine/common/mphf.h"
#include "engine/common/strings.h"
#include "simdjson.h"

namespace herald {
namespace internal {

class PairIndex {
 public:
  struct Slot {
    uint64_t fingerprint;
    std::string_view channel;  // the name or alias that was hashed
    std::string_view event;
    uint32_t pair_id;
  };
  static uint64_t Fingerprint(std::string_view channel, std::string_view event) {
    return HashCombine(HashBytes(channel), HashBytes(event));
  }
  Mphf mphf;
  std::vector<Slot> slots;
};

}  // namespace internal

namespace {

bool IsCanonicalName(std::string_view s) {
  if (s.empty() || s.size() > 64 || s[0] < 'A' || s[0] > 'Z') return false;
  for (char c : s) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

// Reads an object's string member; errors name `where`.
absl::Status ReadString(simdjson::dom::object obj, std::string_view key, std::string_view where,
                        std::string* out, bool required = true) {
  std::string_view v;
  auto field = obj[key];
  if (field.error() == simdjson::NO_SUCH_FIELD) {
    if (!required) return absl::OkStatus();
    return absl::InvalidArgumentError(Cat(where, ": missing \"", key, "\""));
  }
  if (field.get_string().get(v) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(Cat(where, ": \"", key, "\" must be a string"));
  }
  if (required && v.empty()) {
    return absl::InvalidArgumentError(Cat(where, ": \"", key, "\" must not be empty"));
  }
  *out = std::string(v);
  return absl::OkStatus();
}

absl::Status ReadPointers(simdjson::dom::element elem, std::string_view where,
                          RoutingKeyPointers* out) {
  simdjson::dom::object obj;
  if (elem.get_object().get(obj) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(Cat(where, ": \"routingKeys\" must be an object"));
  }
  for (auto [key, value] : obj) {
    std::vector<std::string>* target = nullptr;
    if (key == "applicationId")
      target = &out->application_id;
    else if (key == "entityId")
      target = &out->entity_id;
    else if (key == "resource")
      target = &out->resource;
    else if (key == "user")
      target = &out->user;
    else {
      return absl::InvalidArgumentError(
          Cat(where, ": unknown routing key \"", key,
              "\" (expected applicationId, entityId, resource, user)"));
    }
    simdjson::dom::array arr;
    if (value.get_array().get(arr) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError(
          Cat(where, ": routingKeys.", key, " must be an array of JSON pointers"));
    }
    target->clear();
    for (auto item : arr) {
      std::string_view p;
      if (item.get_string().get(p) != simdjson::SUCCESS || p.empty() || p[0] != '/') {
        return absl::InvalidArgumentError(Cat(
            where, ": routingKeys.", key, " holds an invalid JSON pointer (must start with '/')"));
      }
      target->emplace_back(p);
    }
  }
  return absl::OkStatus();
}

}  // namespace

Catalog::Catalog() = default;
Catalog::~Catalog() = default;

absl::StatusOr<std::shared_ptr<const Catalog>> Catalog::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(Cat(path, ": cannot open catalog file"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return Parse(buffer.str(), path);
}

absl::StatusOr<std::shared_ptr<const Catalog>> Catalog::Parse(std::string_view json,
                                                              std::string_view source) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto err = parser.parse(json.data(), json.size()).get(root)) {
    return absl::InvalidArgumentError(
        Cat(source, ": not valid JSON: ", simdjson::error_message(err)));
  }
  simdjson::dom::array channels;
  if (root["channels"].get_array().get(channels) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(Cat(source, ": missing top-level \"channels\" array"));
  }
  std::shared_ptr<Catalog> catalog(new Catalog());
  absl::flat_hash_set<std::string> names;
  size_t ci = 0;
  for (auto ch_elem : channels) {
    std::string where = Cat(source, ": channels[", ci, "]");
    simdjson::dom::object ch_obj;
    if (ch_elem.get_object().get(ch_obj) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError(Cat(where, ": must be an object"));
    }
    ChannelInfo ch;
    if (auto s = ReadString(ch_obj, "channel", where, &ch.channel); !s.ok()) return s;
    where = Cat(where, " (", ch.channel, ")");
    if (!IsCanonicalName(ch.channel)) {
      return absl::InvalidArgumentError(
          Cat(where, ": channel must match [A-Z][A-Z0-9_]* (at most 64 characters)"));
    }
    if (auto s = ReadString(ch_obj, "name", where, &ch.name); !s.ok()) return s;
    if (auto s = ReadString(ch_obj, "nameJa", where, &ch.name_ja); !s.ok()) return s;
    if (!names.insert(ch.channel).second) {
      return absl::InvalidArgumentError(Cat(where, ": duplicate channel or alias"));
    }
    simdjson::dom::array aliases;
    if (ch_obj["aliases"].get_array().get(aliases) == simdjson::SUCCESS) {
      for (auto a : aliases) {
        std::string_view alias;
        if (a.get_string().get(alias) != simdjson::SUCCESS || !IsCanonicalName(alias)) {
          return absl::InvalidArgumentError(
              Cat(where, ": aliases must be names matching [A-Z][A-Z0-9_]*"));
        }
        if (!names.insert(std::string(alias)).second) {
          return absl::InvalidArgumentError(
              Cat(where, ": alias ", alias, " is already a channel or alias"));
        }
        ch.aliases.emplace_back(alias);
      }
    }
    simdjson::dom::element keys;
    if (ch_obj["routingKeys"].get(keys) == simdjson::SUCCESS) {
      if (auto s = ReadPointers(keys, where, &ch.routing_keys); !s.ok()) return s;
    }
    simdjson::dom::array events;
    if (ch_obj["events"].get_array().get(events) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError(Cat(where, ": missing \"events\" array"));
    }
    absl::flat_hash_set<std::string> event_names;
    size_t ei = 0;
    for (auto ev_elem : events) {
      std::string ev_where = Cat(where, ": events[", ei, "]");
      simdjson::dom::object ev_obj;
      if (ev_elem.get_object().get(ev_obj) != simdjson::SUCCESS) {
        return absl::InvalidArgumentError(Cat(ev_where, ": must be an object"));
      }
      EventInfo ev;
      if (auto s = ReadString(ev_obj, "event", ev_where, &ev.event); !s.ok()) return s;
      ev_where = Cat(ev_where, " (", ev.event, ")");
      if (!IsCanonicalName(ev.event)) {
        return absl::InvalidArgumentError(Cat(ev_where, ": event must match [A-Z][A-Z0-9_]*"));
      }
      if (!event_names.insert(ev.event).second) {
        return absl::InvalidArgumentError(Cat(ev_where, ": duplicate event"));
      }
      if (auto s = ReadString(ev_obj, "name", ev_where, &ev.name); !s.ok()) return s;
      if (auto s = ReadString(ev_obj, "nameJa", ev_where, &ev.name_ja); !s.ok()) return s;
      ev.routing_keys = ch.routing_keys;
      simdjson::dom::element ev_keys;
      if (ev_obj["routingKeys"].get(ev_keys) == simdjson::SUCCESS) {
        if (auto s = ReadPointers(ev_keys, ev_where, &ev.routing_keys); !s.ok()) return s;
      }
      ch.events.push_back(std::move(ev));
      ++ei;
    }
    if (ch.events.empty()) {
      return absl::InvalidArgumentError(Cat(where, ": a channel needs at least one event"));
    }
    if (ch.events.size() > kMaxEventsPerChannel) {
      return absl::InvalidArgumentError(
          Cat(where, ": more than ", kMaxEventsPerChannel, " events"));
    }
    catalog->channels_.push_back(std::move(ch));
    ++ci;
  }
  if (catalog->channels_.empty()) {
    return absl::InvalidArgumentError(Cat(source, ": the catalog has no channels"));
  }
  if (catalog->channels_.size() > 0xffff) {
    return absl::InvalidArgumentError(Cat(source, ": too many channels"));
  }
  if (auto s = catalog->Index(source); !s.ok()) return s;
  return std::shared_ptr<const Catalog>(std::move(catalog));
}

absl::Status Catalog::Index(std::string_view source) {
  index_ = std::make_unique<internal::PairIndex>();
  std::vector<uint64_t> keys;
  std::vector<internal::PairIndex::Slot> by_key;
  for (size_t c = 0; c < channels_.size(); ++c) {
    ChannelInfo& ch = channels_[c];
    for (size_t e = 0; e < ch.events.size(); ++e) {
      const uint32_t id = static_cast<uint32_t>(pairs_.size());
      ch.events[e].pair_id = id;
      pairs_.push_back({static_cast<uint16_t>(c), static_cast<uint16_t>(e)});
      auto add = [&](std::string_view name) {
        const uint64_t fp = internal::PairIndex::Fingerprint(name, ch.events[e].event);
        keys.push_back(fp);
        by_key.push_back({fp, name, ch.events[e].event, id});
      };
      add(ch.channel);
      for (const auto& alias : ch.aliases) add(alias);
    }
  }
  if (auto s = index_->mphf.Build(keys); !s.ok()) {
    return absl::InternalError(Cat(source, ": ", s.message()));
  }
  index_->slots.resize(keys.size());
  for (const auto& slot : by_key) index_->slots[index_->mphf.Lookup(slot.fingerprint)] = slot;
  return absl::OkStatus();
}

int64_t Catalog::PairId(std::string_view channel, std::string_view event) const {
  const uint64_t fp = internal::PairIndex::Fingerprint(channel, event);
  const auto& slot = index_->slots[index_->mphf.Lookup(fp)];
  if (slot.fingerprint != fp || slot.channel != channel || slot.event != event) return -1;
  return slot.pair_id;
}

int Catalog::FindChannel(std::string_view name) const {
  for (size_t c = 0; c < channels_.size(); ++c) {
    if (channels_[c].channel == name) return static_cast<int>(c);
    for (const auto& a : channels_[c].aliases) {
      if (a == name) return static_cast<int>(c);
    }
  }
  return -1;
}

int Catalog::FindEvent(int channel, std::string_view event) const {
  if (channel < 0 || channel >= static_cast<int>(channels_.size())) return -1;
  const auto& events = channels_[channel].events;
  for (size_t e = 0; e < events.size(); ++e) {
    if (events[e].event == event) return static_cast<int>(e);
  }
  return -1;
}

}  // namespace herald
