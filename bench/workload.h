// Synthetic but realistic workloads shared by the benchmarks: subscriptions spread over every
// channel with application/entity criteria, senders and users drawn from pools sized to the
// subscription count, and delivery-report-shaped events of which a controlled share match.
#pragma once

#include <random>
#include <string>
#include <vector>

#include "herald/catalog.h"
#include "herald/subscription.h"

namespace herald::bench {

struct Workload {
  std::vector<Subscription> subscriptions;
  std::vector<std::string> events;  // one envelope each
  std::string ndjson;               // the same events, newline-delimited
};

inline std::string Payload(std::mt19937_64& rng, const std::string& sender, int i) {
  // ~350 bytes, shaped like an SMS delivery report.
  return R"({"results":[{"bulkId":"b-)" + std::to_string(rng() % 100000) + R"(","messageId":"m-)" +
         std::to_string(i) + R"(","to":"4479)" + std::to_string(10000000 + rng() % 89999999) +
         R"(","sender":")" + sender +
         R"(","sentAt":"2026-11-25T12:00:00.000+0000","doneAt":"2026-11-25T12:00:01.000+0000",)"
         R"("messageCount":1,"price":{"pricePerMessage":0.01,"currency":"EUR"},)"
         R"("status":{"groupId":3,"groupName":"DELIVERED","id":5,"name":"DELIVERED_TO_HANDSET"},)"
         R"("error":{"groupId":0,"groupName":"OK","id":0,"name":"NO_ERROR","permanent":false}}]})";
}

// `subscriptions` spread over `profiles` profiles; apps = subscriptions / 8 so a handful of
// subscriptions share each application, as tenants do.
inline Workload MakeWorkload(const Catalog& catalog, size_t subscriptions, size_t profiles,
                             size_t events, uint64_t seed = 42) {
  Workload w;
  std::mt19937_64 rng(seed);
  const size_t apps = std::max<size_t>(1, subscriptions / 8);
  const auto& channels = catalog.channels();
  w.subscriptions.reserve(subscriptions);
  for (size_t i = 0; i < subscriptions; ++i) {
    Subscription s;
    s.subscription_id = "sub-" + std::to_string(i);
    const ChannelInfo& ch = channels[rng() % channels.size()];
    s.channel = ch.channel;
    const int shape = static_cast<int>(rng() % 10);
    if (shape < 8) s.events = {ch.events[rng() % ch.events.size()].event};
    if (shape < 6) {
      s.criteria = {Criterion{"app-" + std::to_string(rng() % apps), std::nullopt}};
      if (shape < 2) s.criteria[0].entity_id = "ent-" + std::to_string(rng() % 4);
    } else if (shape < 8) {
      s.resources = {"sender-" + std::to_string(rng() % apps)};
    } else {
      s.users = {"user-" + std::to_string(rng() % apps)};
    }
    s.group = (rng() % 4 == 0) ? "audit" : "";
    s.profile_id = "profile-" + std::to_string(rng() % profiles);
    w.subscriptions.push_back(std::move(s));
  }
  for (size_t i = 0; i < events; ++i) {
    // Half the events are drawn from existing subscriptions (so they match), half at random.
    const Subscription& s = w.subscriptions[rng() % w.subscriptions.size()];
    const bool match = rng() % 2 == 0;
    const int c = catalog.FindChannel(s.channel);
    const ChannelInfo& ch = channels[c];
    const std::string event =
        match && !s.events.empty() ? s.events[0] : ch.events[rng() % ch.events.size()].event;
    const std::string app = match && !s.criteria.empty() && s.criteria[0].application_id
                                ? *s.criteria[0].application_id
                                : "app-" + std::to_string(rng() % apps);
    const std::string sender =
        match && !s.resources.empty() ? s.resources[0] : "sender-" + std::to_string(rng() % apps);
    std::string e = R"({"channel":")" + s.channel + R"(","event":")" + event +
                    R"(","eventId":"ev-)" + std::to_string(i) + R"(","applicationId":")" + app +
                    R"(","entityId":"ent-)" + std::to_string(rng() % 4) + R"(","resource":")" +
                    sender + R"(","user":"user-)" + std::to_string(rng() % apps) +
                    R"(","payload":)" + Payload(rng, sender, static_cast<int>(i)) + "}";
    w.ndjson += e + "\n";
    w.events.push_back(std::move(e));
  }
  return w;
}

}  // namespace herald::bench
