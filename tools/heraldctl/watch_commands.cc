// heraldctl tail (live deliveries) and top (per-profile table refreshed in place).
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <map>

#include "tools/heraldctl/cli.h"

namespace heraldctl {
namespace {

void AddTail(CLI::App& app, Globals& g) {
  struct Args {
    std::string profile, status, event;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("tail", "webhook requests as they happen (Ctrl-C to stop)");
  cmd->add_option("--profile", a->profile);
  cmd->add_option("--status", a->status, "2xx, 4xx, 5xx or error");
  cmd->add_option("--event", a->event, "EVENT or CHANNEL:EVENT");
  cmd->callback([&g, a] {
    const Output out = g.out();
    std::string query;
    auto param = [&](const char* name, const std::string& v) {
      if (!v.empty()) query += (query.empty() ? "?" : "&") + std::string(name) + "=" + UrlEncode(v);
    };
    param("profileId", a->profile);
    param("status", a->status);
    param("event", a->event);
    simdjson::dom::parser parser;
    g.client()->Stream("/v1/deliveries/stream" + query, [&](std::string_view line) {
      simdjson::dom::element d;
      if (parser.parse(line).get(d) != simdjson::SUCCESS) return true;
      if (const int64_t dropped = Int(d, "dropped", -1); dropped >= 0) {
        std::cerr << "… " << dropped << " more not shown (sampled under load)\n";
        return true;
      }
      if (!out.table()) {
        std::cout << line << std::endl;
        return true;
      }
      const int64_t status = Int(d, "status");
      const std::string s = status > 0 ? std::to_string(status) : "error";
      std::cout << FormatTime(Int(d, "at")) << "  "
                << (status >= 200 && status < 300 ? out.Green(s) : out.Red(s)) << "  "
                << FormatMs(Num(d, "latencyMs")) << "  " << Str(d, "profileId") << "  "
                << Str(d, "channel") << ":" << Str(d, "event") << "  " << Str(d, "webhookId")
                << "  " << Int(d, "attempt") << "/" << Int(d, "maxAttempts") << " "
                << Str(d, "outcome");
      if (const std::string e = Str(d, "error"); !e.empty()) std::cout << "  " << e;
      std::cout << std::endl;
      return true;
    });
  });
}

void AddTop(CLI::App& app, Globals& g) {
  auto sort = std::make_shared<std::string>("queue");
  auto* cmd = app.add_subcommand(
      "top",
      "profiles by queue, p99, errors or rate, refreshed each second (once without a terminal)");
  cmd->add_option("--sort", *sort, "queue, p99, errors or rate")
      ->check(CLI::IsMember({"queue", "p99", "errors", "rate"}));
  cmd->callback([&g, sort] {
    const Output out = g.out();
    const bool live = out.table() && ::isatty(STDOUT_FILENO);
    std::map<std::string, std::pair<int64_t, int64_t>> before;  // delivered, at
    simdjson::dom::parser parser;
    g.client()->Stream("/v1/stats/stream", [&](std::string_view line) {
      if (!out.table()) {
        std::cout << line << std::endl;
        return false;  // one snapshot: a script polls it itself
      }
      simdjson::dom::element root;
      if (parser.parse(line).get(root) != simdjson::SUCCESS) return true;
      const int64_t at = Int(root, "at");
      struct Row {
        std::vector<std::string> cells;
        double queue, p99, errors, rate;
      };
      std::vector<Row> rows;
      simdjson::dom::array profiles;
      if (root["profiles"].get_array().get(profiles) != simdjson::SUCCESS) return true;
      for (auto p : profiles) {
        const std::string id = Str(p, "profileId");
        const int64_t delivered = Int(p, "delivered");
        double rate = 0;
        if (auto it = before.find(id); it != before.end() && at > it->second.second) {
          // A counter that fell: heraldd restarted; the rate starts again.
          rate = delivered >= it->second.first
                     ? 1000.0 * static_cast<double>(delivered - it->second.first) /
                           static_cast<double>(at - it->second.second)
                     : 0;
        }
        before[id] = {delivered, at};
        const std::string state = Str(p, "state");
        const double success = Num(p, "successRate5m", -1);  // null: nothing measured yet
        char pct[16] = "-";
        if (success >= 0) std::snprintf(pct, sizeof pct, "%.1f%%", success * 100);
        char r[16];
        std::snprintf(r, sizeof r, "%.1f", rate);
        std::string error = Str(p["lastError"], "message");
        if (DisplayWidth(error) > 60) error = error.substr(0, 57) + "...";
        rows.push_back({{id, state == "healthy" ? out.Green(state) : out.Red(state), pct, r,
                         FormatMs(Num(p, "p99Ms")), std::to_string(Int(p, "queue")),
                         std::to_string(Int(p, "inFlight")), std::to_string(Int(p, "deadLetters")),
                         error.empty() ? "-" : error},
                        static_cast<double>(Int(p, "queue")),
                        Num(p, "p99Ms"),
                        success >= 0 ? 1 - success : 0,
                        rate});
      }
      const std::string key = *sort;
      std::stable_sort(rows.begin(), rows.end(), [&](const Row& x, const Row& y) {
        if (key == "p99") return x.p99 > y.p99;
        if (key == "errors") return x.errors > y.errors;
        if (key == "rate") return x.rate > y.rate;
        return x.queue > y.queue;
      });
      Table t({"PROFILE", "STATE", "SUCCESS 5m", "RATE/s", "P99", "QUEUE", "IN FLIGHT", "DLQ",
               "LAST ERROR"});
      for (auto& row : rows) t.Add(std::move(row.cells));
      auto c = root["counters"].value_unsafe();
      if (live) std::cout << "\033[H\033[2J";  // in place
      std::cout << out.Bold("heraldd " + g.client()->endpoint().url) << "  " << FormatTime(at)
                << "  accepted " << Int(c, "accepted") << "  delivered " << Int(c, "delivered")
                << "  failed " << Int(c, "failed") << "  dead-lettered " << Int(c, "deadLettered")
                << "\n\n"
                << t.Render() << std::flush;
      return live;
    });
  });
}

}  // namespace

void AddWatchCommands(CLI::App& app, Globals& g) {
  AddTail(app, g);
  AddTop(app, g);
}

}  // namespace heraldctl
