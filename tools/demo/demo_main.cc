// herald-demo: reads the engine settings of configs/herald.toml, loads the catalog and a file of
// security settings, profiles and subscriptions (the management API's JSON shapes), routes an
// NDJSON file of events through libherald and prints which profile got what. A first look at the
// routing semantics before the daemon exists.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "engine/model/json_codec.h"
#include "engine/server/daemon_config.h"
#include "herald/engine.h"

namespace {

struct Flags {
  std::string config = "configs/herald.toml";
  std::string catalog;  // overrides the config's engine.catalog
  std::string subscriptions = "configs/demo/subscriptions.json";
  std::string events = "configs/demo/events.ndjson";
  std::string fanout;  // overrides the config's engine.fanout
};

void Usage(FILE* out) {
  std::fprintf(out,
               "usage: herald-demo [--config FILE] [--catalog FILE] [--subscriptions FILE] "
               "[--events FILE] [--fanout group|all]\n");
}

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

std::string Str(std::string_view s) { return std::string(s); }

int Fail(const std::string& what, const absl::Status& status) {
  std::fprintf(stderr, "herald-demo: %s: %s\n", what.c_str(),
               std::string(status.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "herald-demo: %s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--config")
      flags.config = value();
    else if (arg == "--catalog")
      flags.catalog = value();
    else if (arg == "--subscriptions")
      flags.subscriptions = value();
    else if (arg == "--events")
      flags.events = value();
    else if (arg == "--fanout")
      flags.fanout = value();
    else if (arg == "--help" || arg == "-h") {
      Usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "herald-demo: unknown flag %s\n", arg.c_str());
      Usage(stderr);
      return 2;
    }
  }

  // The daemon's own config reader: the same keys, defaults and errors.
  const char* config_args[] = {"herald-demo", "--config", flags.config.c_str()};
  auto config = herald::server::ParseDaemonConfig(3, config_args);
  if (!config.ok()) {
    std::fprintf(stderr, "herald-demo: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  herald::EngineOptions options = config->engine;
  if (!flags.catalog.empty()) options.catalog_path = flags.catalog;
  if (!flags.fanout.empty()) {
    if (flags.fanout != "group" && flags.fanout != "all") {
      std::fprintf(stderr, "herald-demo: --fanout must be group or all, not \"%s\"\n",
                   flags.fanout.c_str());
      return 2;
    }
    options.fanout = flags.fanout == "all" ? herald::Fanout::kAll : herald::Fanout::kGroupWinner;
  }
  const std::string fanout = options.fanout == herald::Fanout::kAll ? "all" : "group";
  auto engine_or = herald::Engine::Create(options);
  if (!engine_or.ok()) return Fail("catalog", engine_or.status());
  herald::Engine& engine = **engine_or;

  std::string text;
  if (!ReadFile(flags.subscriptions, &text)) {
    std::fprintf(stderr, "herald-demo: cannot read %s\n", flags.subscriptions.c_str());
    return 1;
  }
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto err = parser.parse(text).get(root)) {
    std::fprintf(stderr, "herald-demo: %s: %s\n", flags.subscriptions.c_str(),
                 simdjson::error_message(err));
    return 1;
  }
  size_t counts[3] = {0, 0, 0};
  std::vector<std::string> profiles;
  for (auto section : {"security", "profiles", "subscriptions"}) {
    simdjson::dom::array items;
    if (root[section].get_array().get(items) != simdjson::SUCCESS) continue;
    size_t index = 0;
    for (auto item : items) {
      const std::string where =
          flags.subscriptions + ": " + section + "[" + std::to_string(index++) + "]";
      absl::Status status;
      if (std::string_view(section) == "security") {
        auto s = herald::model::DecodeSecurity(item);
        status = s.ok() ? engine.CreateSecurity(*s) : s.status();
        ++counts[0];
      } else if (std::string_view(section) == "profiles") {
        auto p = herald::model::DecodeProfile(item);
        status = p.ok() ? engine.CreateProfile(p->profile) : p.status();
        if (p.ok()) profiles.push_back(p->profile.profile_id);
        ++counts[1];
      } else {
        auto s = herald::model::DecodeSubscription(item);
        status = s.ok() ? engine.CreateSubscription(s->subscription) : s.status();
        ++counts[2];
      }
      if (!status.ok()) return Fail(where, status);
    }
  }
  engine.FlushIndex();
  std::printf(
      "herald demo: %zu channels, %u channel/event pairs; %zu security settings, "
      "%zu profiles, %zu subscriptions (fan-out: %s)\n\n",
      engine.catalog().channels().size(), engine.catalog().pair_count(), counts[0], counts[1],
      counts[2], fanout.c_str());

  if (!ReadFile(flags.events, &text)) {
    std::fprintf(stderr, "herald-demo: cannot read %s\n", flags.events.c_str());
    return 1;
  }
  std::istringstream lines(text);
  std::string line;
  size_t number = 0;
  std::vector<herald::Notification> got;
  while (std::getline(lines, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::vector<herald::IngestError> errors;
    engine.Ingest(line, herald::InputFormat::kSingle, &errors);
    if (!errors.empty()) {
      std::printf("line %2zu  rejected: %s\n", number, errors[0].message.c_str());
      continue;
    }
    std::string routed;
    std::string label;
    for (const auto& p : profiles) {
      got.clear();
      (void)engine.Poll(p, 100, &got);
      for (const auto& n : got) {
        if (label.empty()) label = Str(n.channel()) + "/" + Str(n.event());
        routed += "\n          -> " + p + "  (subscription " + Str(n.subscription_id()) +
                  ", webhook-id " + Str(n.webhook_id()) + ")";
      }
    }
    std::printf("line %2zu  %s%s\n", number,
                label.empty() ? "matched no subscription" : label.c_str(), routed.c_str());
  }
  const herald::Counters c = engine.counters();
  std::printf(
      "\naccepted %llu, rejected %llu, matched %llu, unmatched %llu, notifications %llu\n",
      static_cast<unsigned long long>(c.accepted), static_cast<unsigned long long>(c.rejected),
      static_cast<unsigned long long>(c.matched), static_cast<unsigned long long>(c.unmatched),
      static_cast<unsigned long long>(c.enqueued));
  return 0;
}
