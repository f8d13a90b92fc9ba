// Tests of herald::Catalog: the shipped configs/catalog.json against DESIGN §6 (channels, events,
// alias, display names, routing-key pointers), pair ids through the perfect hash (members found,
// non-members miss), and rejection of bad catalogs with messages that name the file and the entry.
#include "herald/catalog.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/shipped_catalog.h"

namespace herald {
namespace {

testing::AssertionResult Mentions(const std::string& text, std::string_view part) {
  if (text.find(part) != std::string::npos) return testing::AssertionSuccess();
  return testing::AssertionFailure() << "\"" << text << "\" does not mention \"" << part << "\"";
}

class ShippedCatalog : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(herald::test_support::ShippedCatalog(), nullptr)
        << "configs/catalog.json did not load";
  }
  static const Catalog& catalog() { return *herald::test_support::ShippedCatalog(); }

  static const ChannelInfo& Channel(std::string_view name) {
    const int c = catalog().FindChannel(name);
    EXPECT_GE(c, 0) << name;
    return catalog().channels().at(static_cast<size_t>(c));
  }
  static const EventInfo& Event(std::string_view channel, std::string_view event) {
    const int c = catalog().FindChannel(channel);
    const int e = catalog().FindEvent(c, event);
    EXPECT_GE(e, 0) << channel << " " << event;
    return catalog().channels().at(static_cast<size_t>(c)).events.at(static_cast<size_t>(e));
  }

 private:
};

TEST_F(ShippedCatalog, HasTwentyChannelsAndOneHundredSixtyPairs) {
  EXPECT_EQ(catalog().channels().size(), 20u);
  EXPECT_EQ(catalog().pair_count(), 160u);
}

// DESIGN §6, channel by channel. The two long tables are checked by count and samples below.
TEST_F(ShippedCatalog, ChannelsAndEventsMatchDesign) {
  const std::map<std::string, std::set<std::string>> expected = {
      {"APPLE_MESSAGES_FOR_BUSINESS", {"DELIVERY", "INBOUND_MESSAGE"}},
      {"EMAIL", {"CLICK", "COMPLAINT", "DELIVERY", "LATE_BOUNCE", "OPEN", "UNSUBSCRIBE"}},
      {"FACEBOOK", {"DELIVERY", "INBOUND_MESSAGE", "MARKETING_OPT_IN", "MARKETING_OPT_OUT"}},
      {"KAKAO_ALIM", {"DELIVERY"}},
      {"KAKAO_CHINGU", {"CLICK", "DELIVERY"}},
      {"LINE", {"DELIVERY", "INBOUND_MESSAGE"}},
      {"MOBILE_PUSH", {"DELIVERY"}},
      {"RCS",
       {"CLICK", "DELIVERY", "INBOUND_MESSAGE", "SEEN", "SENDER_UPDATE", "SUGGESTION",
        "TEMPLATE_UPDATE", "TEST_NUMBER_UPDATE", "TYPING_INDICATOR"}},
      {"SMS", {"CLICK", "DELIVERY", "INBOUND_MESSAGE"}},
      {"MMS", {"CLICK", "DELIVERY", "INBOUND_MESSAGE"}},
      {"ZALO", {"CLICK", "DELIVERY", "INBOUND_MESSAGE"}},
      {"VIBER", {"CLICK", "DELIVERY", "INBOUND_MESSAGE", "SEEN"}},
      {"WHATSAPP",
       {"ACCOUNT_REGISTRATION", "ACCOUNT_UPDATE_NOTIFICATION", "BILLING", "CLICK", "DELIVERY",
        "IDENTITY_CHANGE", "INBOUND_MESSAGE", "MARKETING_SUBSCRIPTION_UPDATE", "PAYMENT_STATUS",
        "SEEN", "TEMPLATE_UPDATE"}},
      {"OPEN_CHANNEL", {"DELIVERY"}},
      {"REGISTRATION",
       {"BRAND_AUTH_UPDATE", "BRAND_STATUS_UPDATE", "BRAND_VET_UPDATE",
        "CAMPAIGN_NETWORK_STATUS_UPDATE", "CAMPAIGN_STATUS_UPDATE",
        "RESOURCE_REQUEST_STATUS_UPDATE"}},
      {"MOBILE_IDENTITY", {"SILENT_VERIFICATION"}},
      {"NUMBER_LOOKUP", {"NUMBER_LOOKUP"}},
      {"BLOCKLIST", {"BLOCK", "UNBLOCK"}},
  };
  std::set<std::string> all_channels;
  for (const ChannelInfo& ch : catalog().channels()) {
    all_channels.insert(ch.channel);
    auto it = expected.find(ch.channel);
    if (it == expected.end()) continue;
    std::set<std::string> events;
    for (const EventInfo& ev : ch.events) events.insert(ev.event);
    EXPECT_EQ(events, it->second) << ch.channel;
    EXPECT_EQ(events.size(), ch.events.size()) << ch.channel << " lists an event twice";
  }
  std::set<std::string> expected_channels = {"VOICE_VIDEO", "CUSTOMER_ENGAGEMENT"};
  for (const auto& [channel, events] : expected) expected_channels.insert(channel);
  EXPECT_EQ(all_channels, expected_channels);
}

TEST_F(ShippedCatalog, LongTablesHaveTheSeedsCounts) {
  EXPECT_EQ(Channel("VOICE_VIDEO").events.size(), 65u);
  EXPECT_EQ(Channel("CUSTOMER_ENGAGEMENT").events.size(), 33u);
  for (const char* event :
       {"APPLICATION_TRANSFER_FAILED", "CALL_PRE_ESTABLISHED", "DELIVERY", "DTMF_CAPTURED", "ERROR",
        "PARTICIPANT_ROLE_CHANGE_FAILED", "TRANSCRIPTION"}) {
    EXPECT_GE(catalog().PairId("VOICE_VIDEO", event), 0) << event;
  }
  for (const char* event : {"CONVERSATION_AGENT_STATUS_UPDATED", "CONVERSATION_SLA_POLICY_UPDATED",
                            "PERSON_MERGED", "WEB_SDK_SESSION_STARTED"}) {
    EXPECT_GE(catalog().PairId("CUSTOMER_ENGAGEMENT", event), 0) << event;
  }
}

TEST_F(ShippedCatalog, EveryPairHasADistinctDenseIdThatRoundTrips) {
  std::vector<bool> seen(catalog().pair_count(), false);
  size_t pairs = 0;
  const auto& channels = catalog().channels();
  for (size_t c = 0; c < channels.size(); ++c) {
    const ChannelInfo& ch = channels[c];
    for (size_t e = 0; e < ch.events.size(); ++e) {
      const EventInfo& ev = ch.events[e];
      SCOPED_TRACE(ch.channel + " " + ev.event);
      ++pairs;
      const int64_t id = catalog().PairId(ch.channel, ev.event);
      ASSERT_GE(id, 0);
      ASSERT_LT(id, int64_t{160});
      const uint32_t pid = static_cast<uint32_t>(id);
      EXPECT_EQ(pid, ev.pair_id);
      EXPECT_FALSE(seen[pid]) << "pair id " << pid << " given twice";
      seen[pid] = true;
      EXPECT_EQ(catalog().channel_of(pid), static_cast<int>(c));
      EXPECT_EQ(catalog().event_of(pid), static_cast<int>(e));
      EXPECT_EQ(catalog().channel_info(pid).channel, ch.channel);
      EXPECT_EQ(catalog().event_info(pid).event, ev.event);
      EXPECT_EQ(catalog().FindChannel(ch.channel), static_cast<int>(c));
      EXPECT_EQ(catalog().FindEvent(static_cast<int>(c), ev.event), static_cast<int>(e));
    }
  }
  EXPECT_EQ(pairs, 160u);
}

TEST_F(ShippedCatalog, AliasResolvesToTheChannelsPairs) {
  const int chingu = catalog().FindChannel("KAKAO_CHINGU");
  ASSERT_GE(chingu, 0);
  EXPECT_EQ(catalog().FindChannel("KAKAO_BRAND_MESSAGE"), chingu);
  const ChannelInfo& ch = catalog().channels()[static_cast<size_t>(chingu)];
  EXPECT_EQ(ch.aliases, std::vector<std::string>{"KAKAO_BRAND_MESSAGE"});
  for (const char* event : {"CLICK", "DELIVERY"}) {
    const int64_t id = catalog().PairId("KAKAO_CHINGU", event);
    ASSERT_GE(id, 0) << event;
    EXPECT_EQ(catalog().PairId("KAKAO_BRAND_MESSAGE", event), id) << event;
    EXPECT_EQ(catalog().channel_info(static_cast<uint32_t>(id)).channel, "KAKAO_CHINGU");
  }
  EXPECT_EQ(catalog().PairId("KAKAO_BRAND_MESSAGE", "INBOUND_MESSAGE"), -1);
}

TEST_F(ShippedCatalog, NonMembersMiss) {
  const struct {
    std::string_view channel, event;
  } cases[] = {
      {"SMS", "OPEN"},                             // event of another channel
      {"EMAIL", "INBOUND_MESSAGE"},                // event of another channel
      {"KAKAO_ALIM", "CLICK"},                     // CLICK exists for KAKAO_CHINGU only
      {"SMX", "DELIVERY"},                         // unknown channel
      {"TELEGRAM", "DELIVERY"},                    // unknown channel
      {"", "DELIVERY"},                            // empty channel
      {"SMS", ""},                                 // empty event
      {"", ""},                                    // both empty
      {"sms", "DELIVERY"},                         // case differs
      {"SMS", "delivery"},                         // case differs
      {"Sms", "Delivery"},                         // case differs
      {"SMS ", "DELIVERY"},                        // trailing space
      {"SMS", "DELIVERY "},                        // trailing space
      {"DELIVERY", "SMS"},                         // swapped
      {"SMSDELIVERY", ""},                         // concatenation
      {"SM", "SDELIVERY"},                         // shifted boundary
      {std::string_view("SMS\0", 4), "DELIVERY"},  // embedded NUL
      {"KAKAO_BRAND", "CLICK"},                    // prefix of the alias
  };
  for (const auto& c : cases) {
    EXPECT_EQ(catalog().PairId(c.channel, c.event), -1)
        << "\"" << c.channel << "\" / \"" << c.event << "\"";
  }
}

TEST_F(ShippedCatalog, FindChannelAndFindEventMiss) {
  for (std::string_view name : {"", "sms", "SMS ", "SMSX", "KAKAO", "DELIVERY"}) {
    EXPECT_EQ(catalog().FindChannel(name), -1) << "\"" << name << "\"";
  }
  const int sms = catalog().FindChannel("SMS");
  ASSERT_GE(sms, 0);
  EXPECT_EQ(catalog().FindEvent(sms, "OPEN"), -1);
  EXPECT_EQ(catalog().FindEvent(sms, "delivery"), -1);
  EXPECT_EQ(catalog().FindEvent(sms, ""), -1);
  EXPECT_EQ(catalog().FindEvent(-1, "DELIVERY"), -1);
  EXPECT_EQ(catalog().FindEvent(20, "DELIVERY"), -1);
  EXPECT_EQ(catalog().FindEvent(1 << 20, "DELIVERY"), -1);
}

TEST_F(ShippedCatalog, KeepsEnglishAndJapaneseDisplayNames) {
  EXPECT_EQ(Channel("EMAIL").name, "Email");
  EXPECT_EQ(Channel("EMAIL").name_ja, "メール");
  EXPECT_EQ(Event("EMAIL", "DELIVERY").name, "Delivery");
  EXPECT_EQ(Event("EMAIL", "DELIVERY").name_ja, "配達");
  // The canonical values of DESIGN §6 carry the seed's Japanese names.
  EXPECT_EQ(Event("EMAIL", "CLICK").name_ja, "クリック");
  EXPECT_EQ(Event("EMAIL", "COMPLAINT").name_ja, "苦情");
  EXPECT_EQ(Event("EMAIL", "UNSUBSCRIBE").name_ja, "登録解除");
  EXPECT_EQ(Event("BLOCKLIST", "BLOCK").name_ja, "ブロック");
  EXPECT_EQ(Channel("VOICE_VIDEO").name, "Voice and WebRTC");
  for (const ChannelInfo& ch : catalog().channels()) {
    EXPECT_FALSE(ch.name.empty()) << ch.channel;
    EXPECT_FALSE(ch.name_ja.empty()) << ch.channel;
    for (const EventInfo& ev : ch.events) {
      EXPECT_FALSE(ev.name.empty()) << ch.channel << " " << ev.event;
      EXPECT_FALSE(ev.name_ja.empty()) << ch.channel << " " << ev.event;
    }
  }
}

TEST_F(ShippedCatalog, LoadsRoutingKeyPointers) {
  const ChannelInfo& sms = Channel("SMS");
  const auto& app = sms.routing_keys.application_id;
  EXPECT_NE(std::find(app.begin(), app.end(), "/platform/applicationId"), app.end());
  EXPECT_FALSE(sms.routing_keys.resource.empty());
  // An event without its own pointers inherits the channel's; INBOUND_MESSAGE overrides them.
  EXPECT_EQ(Event("SMS", "DELIVERY").routing_keys.application_id, app);
  EXPECT_EQ(Event("SMS", "DELIVERY").routing_keys.resource, sms.routing_keys.resource);
  EXPECT_EQ(Event("SMS", "INBOUND_MESSAGE").routing_keys.resource, std::vector<std::string>{"/to"});
  for (const ChannelInfo& ch : catalog().channels()) {
    for (const EventInfo& ev : ch.events) {
      const RoutingKeyPointers& keys = ev.routing_keys;
      for (const auto* list : {&keys.application_id, &keys.entity_id, &keys.resource, &keys.user}) {
        for (const std::string& pointer : *list) {
          EXPECT_TRUE(!pointer.empty() && pointer[0] == '/') << ch.channel << " " << ev.event;
        }
      }
    }
  }
}

// --- Catalogs from text ---

constexpr std::string_view kMinimal =
    R"({"channels":[{"channel":"SMS","name":"SMS","nameJa":"SMS",)"
    R"("events":[{"event":"DELIVERY","name":"Delivery","nameJa":"配達"}]}]})";

TEST(CatalogParse, AcceptsAnOperatorDefinedCatalog) {
  const std::string json = R"({"channels":[
    {"channel":"TELEGRAM","name":"Telegram","nameJa":"テレグラム","aliases":["TG"],
     "routingKeys":{"applicationId":["/app"],"user":["/from/id"]},
     "events":[{"event":"DELIVERY","name":"Delivery","nameJa":"配達"},
               {"event":"READ","name":"Read","nameJa":"既読","routingKeys":{"user":["/reader"]}}]},
    {"channel":"AB","name":"ab","nameJa":"ab","events":[{"event":"C","name":"c","nameJa":"c"}]},
    {"channel":"A","name":"a","nameJa":"a","events":[{"event":"BC","name":"bc","nameJa":"bc"}]}
  ]})";
  auto parsed = Catalog::Parse(json, "custom.json");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const Catalog& catalog = **parsed;
  EXPECT_EQ(catalog.channels().size(), 3u);
  EXPECT_EQ(catalog.pair_count(), 4u);
  const int64_t read = catalog.PairId("TELEGRAM", "READ");
  ASSERT_GE(read, 0);
  EXPECT_EQ(catalog.PairId("TG", "READ"), read);
  EXPECT_EQ(catalog.event_info(static_cast<uint32_t>(read)).name_ja, "既読");
  EXPECT_EQ(catalog.event_info(static_cast<uint32_t>(read)).routing_keys.user,
            std::vector<std::string>{"/reader"});
  // The override replaces only the keys it names.
  EXPECT_EQ(catalog.event_info(static_cast<uint32_t>(read)).routing_keys.application_id,
            std::vector<std::string>{"/app"});
  // Names whose concatenations coincide stay distinct.
  const int64_t ab_c = catalog.PairId("AB", "C");
  const int64_t a_bc = catalog.PairId("A", "BC");
  ASSERT_GE(ab_c, 0);
  ASSERT_GE(a_bc, 0);
  EXPECT_NE(ab_c, a_bc);
  EXPECT_EQ(catalog.PairId("AB", "BC"), -1);
  EXPECT_EQ(catalog.PairId("A", "C"), -1);
}

TEST(CatalogParse, MinimalCatalogIsValid) {
  auto parsed = Catalog::Parse(kMinimal, "bad.json");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ((*parsed)->PairId("SMS", "DELIVERY"), 0);
}

std::string ChannelJson(
    std::string_view name, std::string_view extra = "",
    std::string_view events = R"([{"event":"DELIVERY","name":"Delivery","nameJa":"配達"}])") {
  return std::string(R"({"channel":")") + std::string(name) + R"(","name":"n","nameJa":"n",)" +
         std::string(extra) + R"("events":)" + std::string(events) + "}";
}

std::string Channels(const std::vector<std::string>& channels) {
  std::string out = R"({"channels":[)";
  for (size_t i = 0; i < channels.size(); ++i) out += (i ? "," : "") + channels[i];
  return out + "]}";
}

std::string ManyEvents(int n) {
  std::string out = "[";
  for (int i = 0; i < n; ++i) {
    out += (i ? "," : "") + std::string(R"({"event":"E)") + std::to_string(i) +
           R"(","name":"e","nameJa":"e"})";
  }
  return out + "]";
}

struct BadCatalog {
  const char* what;
  std::string json;
  std::vector<std::string> mentions;  // besides the source name
};

TEST(CatalogParse, RejectsBadCatalogsNamingSourceAndEntry) {
  const std::string delivery = R"({"event":"DELIVERY","name":"Delivery","nameJa":"配達"})";
  const std::vector<BadCatalog> cases = {
      {"invalid JSON", R"({"channels":[)", {"not valid JSON"}},
      {"not JSON at all", "channels: []", {"not valid JSON"}},
      {"missing channels", R"({"version":1})", {"\"channels\""}},
      {"channels not an array", R"({"channels":{}})", {"\"channels\""}},
      {"no channels", R"({"channels":[]})", {"no channels"}},
      {"channel not an object", R"({"channels":["SMS"]})", {"channels[0]", "object"}},
      {"duplicate channel",
       Channels({ChannelJson("SMS"), ChannelJson("SMS")}),
       {"channels[1]", "SMS", "duplicate"}},
      {"duplicate event",
       Channels(
           {ChannelJson("MMS"), ChannelJson("SMS", "", "[" + delivery + "," + delivery + "]")}),
       {"channels[1]", "SMS", "events[1]", "DELIVERY", "duplicate event"}},
      {"alias colliding with an earlier channel",
       Channels({ChannelJson("SMS"), ChannelJson("MMS", R"("aliases":["SMS"],)")}),
       {"channels[1]", "MMS", "alias SMS"}},
      {"channel colliding with an earlier alias",
       Channels({ChannelJson("KAKAO_CHINGU", R"("aliases":["MMS"],)"), ChannelJson("MMS")}),
       {"channels[1]", "MMS", "duplicate"}},
      {"alias repeated",
       Channels({ChannelJson("KAKAO_CHINGU", R"("aliases":["KBM","KBM"],)")}),
       {"channels[0]", "KAKAO_CHINGU", "KBM"}},
      {"lowercase alias",
       Channels({ChannelJson("SMS", R"("aliases":["sms"],)")}),
       {"channels[0]", "SMS", "aliases"}},
      {"missing channel name key",
       R"({"channels":[{"name":"n","nameJa":"n","events":[)" + delivery + "]}]}",
       {"channels[0]", "\"channel\""}},
      {"missing name",
       R"({"channels":[)" + ChannelJson("MMS") + R"(,{"channel":"SMS","nameJa":"n","events":[)" +
           delivery + "]}]}",
       {"channels[1]", "SMS", "missing \"name\""}},
      {"empty nameJa",
       R"({"channels":[{"channel":"SMS","name":"n","nameJa":"","events":[)" + delivery + "]}]}",
       {"channels[0]", "SMS", "\"nameJa\"", "empty"}},
      {"name not a string",
       R"({"channels":[{"channel":"SMS","name":5,"nameJa":"n","events":[)" + delivery + "]}]}",
       {"channels[0]", "SMS", "\"name\"", "string"}},
      {"lowercase channel", Channels({ChannelJson("sms")}), {"channels[0]", "sms"}},
      {"lowercase event",
       Channels({ChannelJson("SMS", "", R"([{"event":"delivery","name":"d","nameJa":"d"}])")}),
       {"channels[0]", "SMS", "events[0]", "delivery"}},
      {"event name over 64 characters",
       Channels({ChannelJson(
           "SMS", "", R"([{"event":")" + std::string(65, 'A') + R"(","name":"d","nameJa":"d"}])")}),
       {"channels[0]", "SMS", "events[0]"}},
      {"event missing nameJa",
       Channels({ChannelJson("SMS", "", R"([{"event":"DELIVERY","name":"d"}])")}),
       {"channels[0]", "events[0]", "DELIVERY", "\"nameJa\""}},
      {"empty events",
       Channels({ChannelJson("SMS", "", "[]")}),
       {"channels[0]", "SMS", "at least one event"}},
      {"missing events",
       R"({"channels":[{"channel":"SMS","name":"n","nameJa":"n"}]})",
       {"channels[0]", "SMS", "\"events\""}},
      {"too many events",
       Channels({ChannelJson("SMS", "", ManyEvents(Catalog::kMaxEventsPerChannel + 1))}),
       {"channels[0]", "SMS", "128"}},
      {"routing pointer without leading slash",
       Channels(
           {ChannelJson("SMS", R"("routingKeys":{"applicationId":["platform/applicationId"]},)")}),
       {"channels[0]", "SMS", "routingKeys.applicationId", "JSON pointer"}},
      {"empty routing pointer",
       Channels({ChannelJson("SMS", R"("routingKeys":{"user":[""]},)")}),
       {"channels[0]", "SMS", "routingKeys.user"}},
      {"routing pointer not a string",
       Channels({ChannelJson("SMS", R"("routingKeys":{"resource":[7]},)")}),
       {"channels[0]", "SMS", "routingKeys.resource"}},
      {"routing pointers not an array",
       Channels({ChannelJson("SMS", R"("routingKeys":{"resource":"/sender"},)")}),
       {"channels[0]", "SMS", "routingKeys.resource"}},
      {"routingKeys not an object",
       Channels({ChannelJson("SMS", R"("routingKeys":[],)")}),
       {"channels[0]", "SMS", "routingKeys"}},
      {"unknown routing key",
       Channels({ChannelJson("SMS", R"("routingKeys":{"sender":["/sender"]},)")}),
       {"channels[0]", "SMS", "unknown routing key", "sender"}},
      {"bad routing pointer of an event",
       Channels({ChannelJson("SMS", "",
                             R"([{"event":"DELIVERY","name":"d","nameJa":"d",)"
                             R"("routingKeys":{"entityId":["entityId"]}}])")}),
       {"channels[0]", "SMS", "events[0]", "DELIVERY", "routingKeys.entityId"}},
  };
  for (const BadCatalog& c : cases) {
    SCOPED_TRACE(c.what);
    auto parsed = Catalog::Parse(c.json, "bad.json");
    ASSERT_FALSE(parsed.ok()) << c.json;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << parsed.status();
    const std::string message(parsed.status().message());
    EXPECT_TRUE(Mentions(message, "bad.json"));
    for (const std::string& m : c.mentions) EXPECT_TRUE(Mentions(message, m));
  }
}

TEST(CatalogLoad, MissingFileIsNotFoundNamingThePath) {
  const std::string path = testing::TempDir() + "/no-such-dir/catalog.json";
  auto loaded = Catalog::Load(path);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kNotFound) << loaded.status();
  EXPECT_TRUE(Mentions(std::string(loaded.status().message()), path));
}

TEST(CatalogLoad, BadFileIsInvalidArgumentNamingThePath) {
  const std::string path = testing::TempDir() + "/herald_catalog_test_bad.json";
  {
    std::ofstream out(path, std::ios::binary);
    out << Channels({ChannelJson("SMS"), ChannelJson("SMS")});
  }
  auto loaded = Catalog::Load(path);
  std::remove(path.c_str());
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument) << loaded.status();
  EXPECT_TRUE(Mentions(std::string(loaded.status().message()), path));
  EXPECT_TRUE(Mentions(std::string(loaded.status().message()), "channels[1]"));
}

}  // namespace
}  // namespace herald
