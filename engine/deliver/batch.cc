#include "engine/deliver/batch.h"

#include <cstdio>
#include <ctime>

#include "absl/container/flat_hash_set.h"
#include "engine/common/hash.h"
#include "engine/common/json_writer.h"
#include "engine/common/strings.h"

namespace herald::deliver {

std::optional<std::pair<std::string_view, size_t>> BatchBuilder::ResultsOf(
    std::string_view payload) {
  // Payloads sit in padded buffers (engine blocks, or dead letters reserved with padding).
  simdjson::ondemand::document doc;
  simdjson::ondemand::object object;
  simdjson::ondemand::array results;
  size_t fields = 0, count = 0;
  std::string_view raw;
  if (parser_.iterate(payload.data(), payload.size(), payload.size() + simdjson::SIMDJSON_PADDING)
              .get(doc) != simdjson::SUCCESS ||
      doc.get_object().get(object) != simdjson::SUCCESS ||
      object.count_fields().get(fields) != simdjson::SUCCESS || fields != 1 ||
      object["results"].get_array().get(results) != simdjson::SUCCESS ||
      results.count_elements().get(count) != simdjson::SUCCESS ||
      results.raw_json().get(raw) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  // "[ a, b ]" → "a, b"
  raw.remove_prefix(1);
  while (!raw.empty() && raw.back() != ']') raw.remove_suffix(1);
  if (!raw.empty()) raw.remove_suffix(1);
  return std::make_pair(raw, count);
}

std::string CloudEventsBody(const Batch& batch, int64_t now_ms) {
  const std::time_t t = static_cast<std::time_t>(now_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char time[40];
  std::strftime(time, sizeof time, "%Y-%m-%dT%H:%M:%S", &tm);
  const std::string when = Cat(time, ".", std::to_string(1000 + now_ms % 1000).substr(1), "Z");
  std::string out;
  JsonWriter w(out);
  const bool many = batch.items.size() > 1;
  if (many) w.BeginArray();
  for (const Item& item : batch.items) {
    w.BeginObject()
        .Field("specversion", "1.0")
        .Field("id", many ? item.webhook_id() : std::string_view(batch.id))
        .Field("source", Cat("/herald/", item.channel()))
        .Field("type", Cat(item.channel(), ".", item.event()))
        .Field("subject", item.subscription_id())
        .Field("time", when)
        .Field("datacontenttype", "application/json")
        .RawField("data", item.payload())
        .EndObject();
  }
  if (many) w.EndArray();
  return out;
}

std::string_view CloudEventsContentType(const Batch& batch) {
  return batch.items.size() > 1 ? "application/cloudevents-batch+json"
                                : "application/cloudevents+json";
}

std::unique_ptr<Batch> BatchBuilder::Form(std::deque<Item>& ready, size_t max_items) {
  auto batch = std::make_unique<Batch>();
  if (ready.size() == 1 || max_items == 1) {
    batch->items.push_back(std::move(ready.front()));
    ready.pop_front();
  } else {
    // More than one waiting: {"results":[…]}, each payload contributing its own results items
    // when it is {"results":[…]} itself.
    std::string body = R"({"results":[)";
    size_t items = 0;
    bool empty = true;
    while (!ready.empty() && items < max_items) {
      Item& item = ready.front();
      const std::string_view payload = item.payload();
      auto results = ResultsOf(payload);
      const std::string_view part = results ? results->first : payload;
      const size_t n = results ? results->second : 1;
      if (!batch->items.empty() && items + n > max_items) break;
      if (!part.empty()) {
        if (!empty) body += ',';
        body += part;
        empty = false;
      }
      items += n;
      batch->items.push_back(std::move(item));
      ready.pop_front();
    }
    body += "]}";
    if (batch->items.size() > 1) batch->body = std::move(body);
  }
  // Each distinct value once while they fit in kMaxListedBytes, then ",+N" for the N left out,
  // so a batch's headers stay within what receivers take (8 KiB in all, DESIGN §5).
  auto joined = [&](auto field) {
    absl::flat_hash_set<std::string_view> seen;
    std::string out;
    size_t left_out = 0;
    for (const auto& item : batch->items) {
      const std::string_view v = (item.*field)();
      if (!seen.insert(v).second) continue;
      if (out.size() + v.size() + 1 > kMaxListedBytes) {
        ++left_out;
      } else {
        out += Cat(out.empty() ? "" : ",", v);
      }
    }
    if (left_out > 0) out += Cat(",+", left_out);
    return out;
  };
  batch->subscriptions = joined(&Item::subscription_id);
  batch->channels = joined(&Item::channel);
  batch->events = joined(&Item::event);
  if (batch->items.size() == 1) {
    batch->id = std::string(batch->items[0].webhook_id());
  } else {
    // The same members give the same id in every process (DESIGN §5), so a receiver can
    // de-duplicate a retried batch, across restarts too.
    std::string ids;
    for (const auto& item : batch->items) ids += Cat(item.webhook_id(), "\n");
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx",
                  static_cast<unsigned long long>(StableHashBytes(ids)));
    batch->id = Cat("batch-", std::string_view(hex, 16));
  }
  return batch;
}

}  // namespace herald::deliver
