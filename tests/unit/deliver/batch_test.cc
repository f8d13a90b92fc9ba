#include "engine/deliver/batch.h"

#include <deque>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "simdjson.h"

namespace herald::deliver {
namespace {

// An item as a replayed dead letter carries it: its payload with simdjson's padding spare.
Item Letter(std::string webhook_id, std::string payload, std::string subscription = "s1",
            std::string event = "DELIVERY") {
  auto letter = std::make_shared<DeadLetter>();
  letter->webhook_id = std::move(webhook_id);
  letter->subscription_id = std::move(subscription);
  letter->channel = "SMS";
  letter->event = std::move(event);
  letter->payload.reserve(payload.size() + simdjson::SIMDJSON_PADDING);
  letter->payload = std::move(payload);
  Item item;
  item.letter = std::move(letter);
  return item;
}

std::deque<Item> Ready(std::initializer_list<std::pair<const char*, const char*>> items) {
  std::deque<Item> ready;
  for (const auto& [id, payload] : items) ready.push_back(Letter(id, payload));
  return ready;
}

TEST(BatchBuilder, ALoneNotificationGoesVerbatimWithItsOwnId) {
  BatchBuilder builder;
  auto ready = Ready({{"evt-1", R"({"a":1})"}});
  auto batch = builder.Form(ready, 100);
  EXPECT_TRUE(ready.empty());
  EXPECT_TRUE(batch->body.empty());
  EXPECT_EQ(batch->request_body(), R"({"a":1})");
  EXPECT_EQ(batch->id, "evt-1");
  EXPECT_EQ(batch->subscriptions, "s1");
  EXPECT_EQ(batch->events, "DELIVERY");
}

TEST(BatchBuilder, SeveralGoAsResultsAndResultsPayloadsContributeTheirItems) {
  BatchBuilder builder;
  auto ready = Ready({{"a", R"({"x":1})"},
                      {"b", R"({"results":[{"y":2},{"y":3}]})"},
                      {"c", R"({"results":[]})"},
                      {"d", "[4]"}});
  auto batch = builder.Form(ready, 100);
  EXPECT_EQ(batch->items.size(), 4u);
  EXPECT_EQ(batch->body, R"({"results":[{"x":1},{"y":2},{"y":3},[4]]})");
  simdjson::dom::parser parser;
  EXPECT_EQ(parser.parse(batch->body).error(), simdjson::SUCCESS);
  EXPECT_TRUE(batch->id.starts_with("batch-")) << batch->id;
}

// max_items counts the items of {"results":[…]} payloads; what does not fit waits its turn.
TEST(BatchBuilder, NoBatchGoesPastMaxItemsButOneAlwaysGoes) {
  BatchBuilder builder;
  auto ready = Ready({{"a", "1"}, {"b", R"({"results":[2,3,4]})"}, {"c", "5"}});
  auto first = builder.Form(ready, 3);
  EXPECT_EQ(first->items.size(), 1u) << "b's three items would make four";
  EXPECT_EQ(first->request_body(), "1");
  auto second = builder.Form(ready, 3);
  EXPECT_EQ(second->request_body(), R"({"results":[2,3,4]})") << "alone, it goes verbatim";
  EXPECT_EQ(second->items.size(), 1u);
  auto rest = builder.Form(ready, 3);
  EXPECT_EQ(rest->request_body(), "5");
  EXPECT_TRUE(ready.empty());
}

// The same members make the same id, so a receiver de-duplicates a retried batch across
// restarts; other members, or the same in another order, make another.
TEST(BatchBuilder, ABatchIdDependsOnItsMembersAlone) {
  BatchBuilder a, b;
  auto ready1 = Ready({{"e1", "1"}, {"e2", "2"}});
  auto ready2 = Ready({{"e1", "10"}, {"e2", "20"}});
  auto ready3 = Ready({{"e2", "2"}, {"e1", "1"}});
  auto ready4 = Ready({{"e1", "1"}, {"e3", "2"}});
  const std::string id = a.Form(ready1, 10)->id;
  EXPECT_EQ(b.Form(ready2, 10)->id, id) << "payloads do not matter";
  EXPECT_NE(b.Form(ready3, 10)->id, id);
  EXPECT_NE(b.Form(ready4, 10)->id, id);
}

TEST(BatchBuilder, HeadersListEachValueOnceWithinTheirBound) {
  BatchBuilder builder;
  std::deque<Item> ready;
  ready.push_back(Letter("e1", "1", "s1", "CLICK"));
  ready.push_back(Letter("e2", "2", "s1", "CLICK"));
  ready.push_back(Letter("e3", "3", "s2", "DELIVERY"));
  auto batch = builder.Form(ready, 10);
  EXPECT_EQ(batch->subscriptions, "s1,s2");
  EXPECT_EQ(batch->events, "CLICK,DELIVERY");
  EXPECT_EQ(batch->channels, "SMS");

  std::deque<Item> many;
  for (int i = 0; i < 200; ++i) {
    many.push_back(Letter("e" + std::to_string(i), "0", "subscription-" + std::to_string(i)));
  }
  auto big = builder.Form(many, 200);
  EXPECT_LE(big->subscriptions.size(), kMaxListedBytes + 8);
  const size_t plus = big->subscriptions.rfind(",+");
  ASSERT_NE(plus, std::string::npos) << big->subscriptions;
  const size_t listed = static_cast<size_t>(
      std::count(big->subscriptions.begin(), big->subscriptions.begin() + plus, ',') + 1);
  EXPECT_EQ(listed + std::stoul(big->subscriptions.substr(plus + 2)), 200u)
      << "every value is listed or counted";
}

}  // namespace
}  // namespace herald::deliver
