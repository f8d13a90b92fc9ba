// heraldctl status, catalog, sub, profile, security, import, export, dlq and deliveries: the
// management API in nouns and verbs.
#include <cmath>
#include <fstream>
#include <iostream>
#include <set>

#include "absl/strings/escaping.h"
#include "engine/common/json_writer.h"
#include "tools/heraldctl/cli.h"

namespace heraldctl {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

simdjson::dom::element Parse(simdjson::dom::parser& parser, const std::string& json) {
  simdjson::dom::element root;
  if (parser.parse(json).get(root) != simdjson::SUCCESS) {
    throw Failure(kServerError, "heraldd answered something that is not JSON");
  }
  return root;
}

std::vector<std::string> Channels(Client& client) {
  simdjson::dom::parser parser;
  const std::string body = client.Checked("GET", "/v1/catalog").body;
  std::vector<std::string> out;
  for (auto ch : ArrayOf(Parse(parser, body), "channels")) out.push_back(Str(ch, "channel"));
  return out;
}

// Every page of a paged list, as one {"results":[…]} of the items' JSON.
std::vector<std::string> AllPages(Client& client, const std::string& path) {
  std::vector<std::string> items;
  simdjson::dom::parser parser;
  for (int64_t page = 0;; ++page) {
    const std::string sep = path.find('?') == std::string::npos ? "?" : "&";
    const std::string body =
        client.Checked("GET", path + sep + "page=" + std::to_string(page) + "&size=100").body;
    auto root = Parse(parser, body);
    for (auto item : ArrayOf(root, "results")) items.push_back(simdjson::minify(item));
    if (page + 1 >= Int(root["paging"], "totalPages", 0)) break;
  }
  return items;
}

std::string Results(const std::vector<std::string>& items) {
  std::string out;
  herald::JsonWriter w(out);
  w.BeginObject().Key("results").BeginArray();
  for (const auto& item : items) w.Raw(item);
  w.EndArray().EndObject();
  return out;
}

// A list as a table (a row per item from `row`), JSON, NDJSON or ids.
template <typename Row>
void PrintList(const Output& out, const std::vector<std::string>& items, Table table,
               std::string_view id_field, Row row) {
  simdjson::dom::parser parser;
  switch (out.format) {
    case Format::kJson:
      std::cout << Results(items) << "\n";
      return;
    case Format::kNdjson:
      for (const auto& item : items) std::cout << item << "\n";
      return;
    case Format::kIds:
      for (const auto& item : items) std::cout << Str(Parse(parser, item), id_field) << "\n";
      return;
    case Format::kTable:
      for (const auto& item : items) table.Add(row(Parse(parser, item)));
      std::cout << table.Render();
      if (table.empty()) std::cerr << "(none)\n";
      return;
  }
}

std::string Filters(simdjson::dom::element s) {
  std::vector<std::string> parts;
  simdjson::dom::array criteria;
  if (s["criteria"].get_array().get(criteria) == simdjson::SUCCESS) {
    for (auto c : criteria) {
      std::string pair;
      if (const auto app = Str(c, "applicationId"); !app.empty()) pair += "app=" + app;
      if (const auto entity = Str(c, "entityId"); !entity.empty()) {
        pair += (pair.empty() ? "" : "/") + std::string("entity=") + entity;
      }
      if (!pair.empty()) parts.push_back(pair);
    }
  }
  if (const auto r = JoinStrings(s, "resources"); !r.empty()) parts.push_back("resources=" + r);
  if (const auto u = JoinStrings(s, "users"); !u.empty()) parts.push_back("users=" + u);
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : " ") + p;
  return out.empty() ? "-" : out;
}

std::string Events(simdjson::dom::element s) {
  simdjson::dom::array events;
  if (s["events"].get_array().get(events) != simdjson::SUCCESS || events.size() == 0) return "*";
  std::string out;
  for (auto e : events) out += (out.empty() ? "" : ",") + EventName(e);
  return out;
}

// The body of a create or update: --data's object with each --set applied.
std::string Body(const std::string& data, const std::vector<std::string>& sets,
                 const std::string& what) {
  Fields fields = data.empty() ? Fields{} : ObjectFields(ReadData(data), "--data");
  for (const auto& s : sets) ApplySet(fields, s);
  if (fields.empty())
    throw Failure(kUsage, what + ": give --data JSON|@file|- or --set field=value");
  return JoinObject(fields);
}

// Lets a write's answer speak: the ids it returned, or the whole answer with --json.
void PrintWritten(const Output& out, const Response& r, const std::string& what) {
  if (!out.table()) {
    std::cout << r.body << "\n";
    return;
  }
  std::cerr << what << "\n";
  if (!r.body.empty()) std::cout << Pretty(r.body) << "\n";
}

struct ResourceArgs {
  std::string channel, id, data;
  std::vector<std::string> sets;
};

// The five verbs of one resource kind.
struct Kind {
  std::string noun;      // "profile"
  std::string path;      // "/subscriptions/1/profiles"
  std::string id_field;  // "profileId"
  std::vector<std::string> columns;
  std::function<std::vector<std::string>(simdjson::dom::element)> row;
};

void AddKind(CLI::App& app, Globals& g, const Kind& kind, const std::string& help) {
  auto* cmd = app.add_subcommand(kind.noun, help);
  cmd->require_subcommand(1);
  auto a = std::make_shared<ResourceArgs>();
  auto item = [kind](const std::string& id) { return kind.path + "/" + UrlEncode(id); };

  cmd->add_subcommand("ls", "list them")->callback([&g, kind] {
    auto client = g.client();
    const auto items = AllPages(*client, kind.path);
    PrintList(g.out(), items, Table(kind.columns), kind.id_field, kind.row);
  });
  auto* get = cmd->add_subcommand("get", "show one");
  get->add_option("id", a->id)->required();
  get->callback(
      [&g, a, item] { PrintJson(g.out(), g.client()->Checked("GET", item(a->id)).body); });
  auto* create = cmd->add_subcommand("create", "create one from --data and --set");
  create->add_option("--data", a->data, "JSON, @file or - (stdin)");
  create->add_option("--set", a->sets, "field=value (repeatable)");
  create->callback([&g, a, kind] {
    const auto r = g.client()->Checked("POST", kind.path, Body(a->data, a->sets, kind.noun));
    PrintWritten(g.out(), r, kind.noun + " created");
  });
  auto* update = cmd->add_subcommand("update", "replace one with --data and --set");
  update->add_option("id", a->id)->required();
  update->add_option("--data", a->data, "JSON, @file or - (stdin)");
  update->add_option("--set", a->sets, "field=value (repeatable)");
  update->callback([&g, a, item, kind] {
    const auto r = g.client()->Checked("PUT", item(a->id), Body(a->data, a->sets, kind.noun));
    PrintWritten(g.out(), r, kind.noun + " " + a->id + " updated");
  });
  auto* rm = cmd->add_subcommand("rm", "delete one");
  rm->add_option("id", a->id)->required();
  rm->callback([&g, a, item, kind] {
    const auto r = g.client()->Checked("DELETE", item(a->id));
    PrintWritten(g.out(), r, kind.noun + " " + a->id + " deleted");
  });
}

void AddSubscriptions(CLI::App& app, Globals& g) {
  auto* cmd = app.add_subcommand("sub", "subscriptions: ls [CHANNEL], get|create|update|rm");
  cmd->require_subcommand(1);
  auto a = std::make_shared<ResourceArgs>();
  static const std::vector<std::string> kColumns = {"ID",    "CHANNEL", "EVENTS",
                                                    "GROUP", "PROFILE", "FILTERS"};
  auto row = [](simdjson::dom::element s) -> std::vector<std::string> {
    const std::string group = Str(s, "group");
    return {
        Str(s, "subscriptionId"),       Str(s, "channel"), Events(s), group.empty() ? "-" : group,
        Str(s["profile"], "profileId"), Filters(s)};
  };
  auto path = [](const std::string& channel) {
    return "/subscriptions/1/subscription/" + UrlEncode(channel);
  };
  auto* ls =
      cmd->add_subcommand("ls", "list a channel's subscriptions (every channel's without one)");
  ls->add_option("channel", a->channel);
  ls->callback([&g, a, row, path] {
    auto client = g.client();
    std::vector<std::string> items;
    const auto channels =
        a->channel.empty() ? Channels(*client) : std::vector<std::string>{a->channel};
    for (const auto& ch : channels) {
      auto more = AllPages(*client, path(ch));
      items.insert(items.end(), more.begin(), more.end());
    }
    PrintList(g.out(), items, Table(kColumns), "subscriptionId", row);
  });
  auto* get = cmd->add_subcommand("get", "show one");
  get->add_option("channel", a->channel)->required();
  get->add_option("id", a->id)->required();
  get->callback([&g, a, path] {
    PrintJson(g.out(), g.client()->Checked("GET", path(a->channel) + "/" + UrlEncode(a->id)).body);
  });
  auto* create = cmd->add_subcommand("create", "create one in CHANNEL from --data and --set");
  create->add_option("channel", a->channel)->required();
  create->add_option("--data", a->data, "JSON, @file or - (stdin)");
  create->add_option("--set", a->sets, "field=value (repeatable)");
  create->callback([&g, a, path] {
    const auto r = g.client()->Checked("POST", path(a->channel), Body(a->data, a->sets, "sub"));
    PrintWritten(g.out(), r, "subscription created");
  });
  auto* update = cmd->add_subcommand("update", "replace one with --data and --set");
  update->add_option("channel", a->channel)->required();
  update->add_option("id", a->id)->required();
  update->add_option("--data", a->data, "JSON, @file or - (stdin)");
  update->add_option("--set", a->sets, "field=value (repeatable)");
  update->callback([&g, a, path] {
    const auto r = g.client()->Checked("PUT", path(a->channel) + "/" + UrlEncode(a->id),
                                       Body(a->data, a->sets, "sub"));
    PrintWritten(g.out(), r, "subscription " + a->id + " updated");
  });
  auto* rm = cmd->add_subcommand("rm", "delete one");
  rm->add_option("channel", a->channel)->required();
  rm->add_option("id", a->id)->required();
  rm->callback([&g, a, path] {
    const auto r = g.client()->Checked("DELETE", path(a->channel) + "/" + UrlEncode(a->id));
    PrintWritten(g.out(), r, "subscription " + a->id + " deleted");
  });
}

void AddCatalog(CLI::App& app, Globals& g) {
  auto* cmd = app.add_subcommand("catalog", "channels and events, with English and Japanese names");
  cmd->require_subcommand(1);
  auto arg = std::make_shared<std::string>();
  // Rows of (channel, event or "", English, Japanese) matching `keep`.
  auto rows = [&g](const std::function<bool(simdjson::dom::element, simdjson::dom::element)>& keep,
                   bool events) {
    auto client = g.client();
    const std::string body = client->Checked("GET", "/v1/catalog").body;
    const Output out = g.out();
    simdjson::dom::parser parser;
    auto root = Parse(parser, body);
    Table t(events ? std::vector<std::string>{"CHANNEL", "EVENT", "NAME", "日本語"}
                   : std::vector<std::string>{"CHANNEL", "NAME", "日本語", "EVENTS"});
    std::string json;
    herald::JsonWriter w(json);
    w.BeginArray();
    for (auto ch : ArrayOf(root, "channels")) {
      if (!events) {
        if (!keep(ch, {})) continue;
        t.Add({Str(ch, "channel"), Str(ch, "name"), Str(ch, "nameJa"),
               std::to_string(ArrayOf(ch, "events").size())});
        w.Raw(simdjson::minify(ch));
        continue;
      }
      for (auto e : ArrayOf(ch, "events")) {
        if (!keep(ch, e)) continue;
        t.Add({Str(ch, "channel"), Str(e, "event"), Str(e, "name"), Str(e, "nameJa")});
        w.BeginObject()
            .Field("channel", Str(ch, "channel"))
            .Field("event", Str(e, "event"))
            .Field("name", Str(e, "name"))
            .Field("nameJa", Str(e, "nameJa"))
            .EndObject();
      }
    }
    w.EndArray();
    if (out.table()) {
      std::cout << t.Render();
      if (t.empty()) throw Failure(kNotFound, "nothing in the catalog matches");
    } else {
      std::cout << json << "\n";
    }
  };
  cmd->add_subcommand("ls", "list the channels")->callback([rows] {
    rows([](auto, auto) { return true; }, false);
  });
  auto* show = cmd->add_subcommand("show", "a channel's events");
  show->add_option("channel", *arg)->required();
  show->callback([rows, arg] {
    rows([arg](simdjson::dom::element ch,
               simdjson::dom::element) { return Str(ch, "channel") == *arg; },
         true);
  });
  auto* search =
      cmd->add_subcommand("search", "events whose channel, name or Japanese name contains TEXT");
  search->add_option("text", *arg)->required();
  search->callback([rows, arg] {
    auto lower = [](std::string s) {
      for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return s;
    };
    const std::string want = lower(*arg);
    rows(
        [&](simdjson::dom::element ch, simdjson::dom::element e) {
          for (const std::string& text :
               {Str(ch, "channel"), Str(e, "event"), Str(e, "name"), Str(e, "nameJa")}) {
            if (lower(text).find(want) != std::string::npos) return true;
          }
          return false;
        },
        true);
  });
}

void AddStatus(CLI::App& app, Globals& g) {
  app.add_subcommand("status", "is it up, is it flowing, who is failing")->callback([&g] {
    auto client = g.client();
    const Output out = g.out();
    const auto health = client->Call("GET", "/healthz");
    const auto ready = client->Call("GET", "/readyz");
    const auto stats = client->Checked("GET", "/v1/stats");
    if (!out.table()) {
      std::cout << stats.body << "\n";
      return;
    }
    simdjson::dom::parser parser;
    auto root = Parse(parser, stats.body);
    auto c = root["counters"].value();
    auto gauges = root["gauges"].value();
    std::cout << "heraldd " << client->endpoint().url << ": "
              << (health.status == 200 ? out.Green("up") : out.Red("down")) << ", "
              << (ready.status == 200 ? "ready" : "not ready") << "\n"
              << "events    accepted " << Int(c, "accepted") << ", rejected " << Int(c, "rejected")
              << ", matched " << Int(c, "matched") << "\n"
              << "webhooks  delivered " << Int(c, "delivered") << ", failed " << Int(c, "failed")
              << ", retried " << Int(c, "retried") << ", dead-lettered " << Int(c, "deadLettered")
              << "\n"
              << "now       queued " << Int(gauges, "queued") << ", in flight "
              << Int(gauges, "inFlight") << ", dead letters " << Int(gauges, "deadLetters") << "\n";
    if (simdjson::dom::element js; root["jetstream"].get(js) == simdjson::SUCCESS) {
      std::cout << "jetstream "
                << (Bool(js, "connected") ? out.Green("connected") : out.Red("disconnected"))
                << ", partitions owned " << Int(js, "partitionsOwned") << " of "
                << Int(js, "partitions") << ", instances alive " << Int(js, "liveMembers")
                << ", routing lag " << Int(js, "consumerLag") << ", pending acks "
                << Int(js, "pendingAcks") << "\n";
    }
    int unwell = 0;
    for (auto p : ArrayOf(root, "profiles")) {
      const std::string state = Str(p, "state");
      if (state == "healthy") continue;
      ++unwell;
      std::cout << out.Red(state) << "  " << Str(p, "profileId");
      if (const std::string e = Str(p["lastError"], "message"); !e.empty()) std::cout << ": " << e;
      std::cout << "\n";
    }
    if (unwell == 0) std::cout << "profiles  all healthy\n";
  });
}

void AddImportExport(CLI::App& app, Globals& g) {
  struct Args {
    std::string file, channel;
    size_t batch = 1000;
    bool dry_run = false;
  };
  auto a = std::make_shared<Args>();
  auto* imp = app.add_subcommand("import", "import subscriptions from NDJSON (FILE or -)");
  imp->add_option("file", a->file, "NDJSON, a subscription with its channel per line")->required();
  imp->add_option("--batch", a->batch, "lines per request (default 1000)")
      ->check(CLI::Range(1, 100000));
  imp->add_flag("--dry-run", a->dry_run, "check every line against the catalog; import nothing");
  imp->callback([&g, a] {
    const Output out = g.out();
    auto client = g.client();
    std::ifstream file;
    std::istream* in = &std::cin;
    uint64_t total = 0;
    if (a->file != "-") {
      file.open(a->file, std::ios::binary);
      if (!file) throw Failure(kUsage, "cannot read " + a->file);
      for (std::string l; std::getline(file, l);) ++total;  // for the ETA
      file.clear();
      file.seekg(0);
      in = &file;
    }
    std::set<std::string> events;  // CHANNEL:EVENT, for --dry-run
    std::set<std::string> channels;
    if (a->dry_run) {
      simdjson::dom::parser parser;
      const std::string body = client->Checked("GET", "/v1/catalog").body;
      for (auto ch : ArrayOf(Parse(parser, body), "channels")) {
        channels.insert(Str(ch, "channel"));
        for (auto e : ArrayOf(ch, "events"))
          events.insert(Str(ch, "channel") + ":" + Str(e, "event"));
      }
    }
    Progress progress(out, "lines", total);
    uint64_t line = 0, imported = 0, failed = 0;
    std::vector<std::pair<uint64_t, std::string>> errors;
    std::string batch;
    uint64_t batch_first = 1, batch_lines = 0;
    simdjson::dom::parser parser;
    auto flush = [&] {
      if (batch_lines == 0) return;
      if (!a->dry_run) {
        const auto r =
            client->Checked("POST", "/subscriptions/1/import", batch, "application/x-ndjson");
        auto root = Parse(parser, r.body);
        imported += static_cast<uint64_t>(Int(root, "imported"));
        failed += static_cast<uint64_t>(Int(root, "failed"));
        for (auto e : ArrayOf(root, "errors")) {
          errors.emplace_back(batch_first + static_cast<uint64_t>(Int(e, "line")) - 1,
                              Str(e, "error"));
        }
      }
      batch.clear();
      batch_first = line + 1;
      batch_lines = 0;
      progress.Update(line);
    };
    for (std::string text; std::getline(*in, text);) {
      ++line;
      ++batch_lines;
      if (a->dry_run) {
        simdjson::dom::element root;
        std::string problem;
        if (text.find_first_not_of(" \t\r") == std::string::npos) {
          // blank: skipped, as import does
        } else if (parser.parse(text).get(root) != simdjson::SUCCESS || !root.is_object()) {
          problem = "not a JSON object";
        } else if (Str(root, "subscriptionId").empty()) {
          problem = "subscriptionId is missing";
        } else if (!channels.contains(Str(root, "channel"))) {
          problem = "unknown channel \"" + Str(root, "channel") + "\"";
        } else {
          simdjson::dom::array list;
          if (root["events"].get_array().get(list) == simdjson::SUCCESS) {
            for (auto e : list) {
              const std::string name = EventName(e);
              if (!events.contains(Str(root, "channel") + ":" + name)) {
                problem = "unknown event \"" + name + "\"";
              }
            }
          }
        }
        if (problem.empty()) {
          ++imported;
        } else {
          ++failed;
          errors.emplace_back(line, problem);
        }
      }
      batch += text;
      batch += '\n';
      if (batch_lines >= a->batch) flush();
    }
    flush();
    progress.Finish(line);
    if (out.table()) {
      std::cout << (a->dry_run ? "would import " : "imported ") << imported << ", failed " << failed
                << " of " << line << " lines\n";
      for (size_t i = 0; i < errors.size() && i < 50; ++i) {
        std::cout << "  line " << errors[i].first << ": " << errors[i].second << "\n";
      }
      if (errors.size() > 50) std::cout << "  … and " << errors.size() - 50 << " more\n";
    } else {
      std::string json;
      herald::JsonWriter w(json);
      w.BeginObject().Field(a->dry_run ? "valid" : "imported", imported).Field("failed", failed);
      w.Key("errors").BeginArray();
      for (const auto& [l, e] : errors) {
        w.BeginObject().Field("line", l).Field("error", e).EndObject();
      }
      w.EndArray().EndObject();
      std::cout << json << "\n";
    }
    if (failed > 0) {
      throw Failure(imported > 0 ? kPartial : kUsage, std::to_string(failed) + " line(s) failed");
    }
  });

  auto* exp = app.add_subcommand("export", "subscriptions as NDJSON that import reads back");
  exp->add_option("channel", a->channel, "only this channel's");
  exp->callback([&g, a] {
    auto client = g.client();
    const auto channels =
        a->channel.empty() ? Channels(*client) : std::vector<std::string>{a->channel};
    simdjson::dom::parser parser;
    for (const auto& ch : channels) {
      for (const auto& item : AllPages(*client, "/subscriptions/1/subscription/" + UrlEncode(ch))) {
        auto s = Parse(parser, item);
        std::string line;
        herald::JsonWriter w(line);
        w.BeginObject();
        simdjson::dom::object fields;
        if (s.get_object().get(fields) != simdjson::SUCCESS) continue;
        for (auto [key, value] : fields) {
          if (key == "profile") {  // import takes the reference alone
            w.Key("profile").BeginObject().Field("profileId", Str(value, "profileId")).EndObject();
          } else {
            w.RawField(key, simdjson::minify(value));
          }
        }
        w.EndObject();
        std::cout << line << "\n";
      }
    }
  });
}

void AddDeadLetters(CLI::App& app, Globals& g) {
  struct Args {
    std::string profile, id;
    std::vector<std::string> ids;
    bool yes = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("dlq", "dead letters: ls, show, replay, rm");
  cmd->require_subcommand(1);
  auto list = [&g](const std::string& profile) {
    auto client = g.client();
    return AllPages(
        *client, "/v1/dead-letters" + (profile.empty() ? "" : "?profileId=" + UrlEncode(profile)));
  };
  auto* ls = cmd->add_subcommand("ls", "list dead letters");
  ls->add_option("--profile", a->profile, "only this profile's");
  ls->callback([&g, a, list] {
    PrintList(
        g.out(), list(a->profile),
        Table({"ID", "PROFILE", "EVENT", "WEBHOOK-ID", "ATTEMPTS", "STATUS", "ERROR", "FAILED AT"}),
        "id", [](simdjson::dom::element d) -> std::vector<std::string> {
          const int64_t status = Int(d, "lastStatus");
          return {Str(d, "id"),
                  Str(d, "profileId"),
                  Str(d, "channel") + ":" + Str(d, "event"),
                  Str(d, "webhookId"),
                  std::to_string(Int(d, "attempts")),
                  status > 0 ? std::to_string(status) : "-",
                  Str(d, "lastError"),
                  FormatTime(Int(d, "failedAt"))};
        });
  });
  auto* show = cmd->add_subcommand("show", "one dead letter with its payload");
  show->add_option("id", a->id)->required();
  show->add_option("--profile", a->profile, "its profile (faster)");
  show->callback([&g, a, list] {
    simdjson::dom::parser parser;
    for (const auto& item : list(a->profile)) {
      if (Str(Parse(parser, item), "id") == a->id) return PrintJson(g.out(), item);
    }
    throw Failure(kNotFound, "no dead letter " + a->id);
  });
  // Replay and rm act on a profile's letters (the ids given, or all), after saying how many.
  auto act = [&g, a, list](bool replay) {
    const Output out = g.out();
    size_t count = a->ids.size();
    if (count == 0) count = list(a->profile).size();
    if (count == 0) {
      std::cerr << "no dead letters of profile " << a->profile << "\n";
      return;
    }
    const std::string what = std::string(replay ? "replay " : "delete ") + std::to_string(count) +
                             " dead letter(s) of profile " + a->profile;
    if (!a->yes && !Confirm(out, what + "?")) {
      throw Failure(
          kUsage, out.stderr_terminal ? "not confirmed" : what + ": add --yes without a terminal");
    }
    auto client = g.client();
    Response r;
    if (replay) {
      std::string body;
      herald::JsonWriter w(body);
      w.BeginObject().Field("profileId", a->profile);
      if (!a->ids.empty()) w.Strings("ids", a->ids);
      w.EndObject();
      r = client->Checked("POST", "/v1/dead-letters/replay", body);
    } else {
      std::string query = "?profileId=" + UrlEncode(a->profile);
      for (const auto& id : a->ids) query += "&id=" + UrlEncode(id);
      r = client->Checked("DELETE", "/v1/dead-letters" + query);
    }
    if (out.table()) {
      std::cout << Pretty(r.body) << "\n";
    } else {
      std::cout << r.body << "\n";
    }
  };
  for (const bool replay : {true, false}) {
    auto* c = cmd->add_subcommand(
        replay ? "replay" : "rm",
        replay ? "deliver a profile's dead letters again" : "delete a profile's dead letters");
    c->add_option("--profile", a->profile, "the profile")->required();
    c->add_option("--id", a->ids, "only these (repeatable)");
    c->add_flag("-y,--yes", a->yes, "do not ask (required without a terminal)");
    c->callback([act, replay] { act(replay); });
  }
}

void AddDeliveries(CLI::App& app, Globals& g) {
  struct Args {
    std::string profile, status, event, id;
    int limit = 50;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("deliveries", "the latest webhook requests: ls, show, resend");
  cmd->require_subcommand(1);
  auto* ls = cmd->add_subcommand("ls", "newest first");
  ls->add_option("--profile", a->profile);
  ls->add_option("--status", a->status, "2xx, 4xx, 5xx or error");
  ls->add_option("--event", a->event, "EVENT or CHANNEL:EVENT");
  ls->add_option("--limit", a->limit)->check(CLI::Range(1, 1000));
  ls->callback([&g, a] {
    std::string query = "?limit=" + std::to_string(a->limit);
    if (!a->profile.empty()) query += "&profileId=" + UrlEncode(a->profile);
    if (!a->status.empty()) query += "&status=" + UrlEncode(a->status);
    if (!a->event.empty()) query += "&event=" + UrlEncode(a->event);
    const auto r = g.client()->Checked("GET", "/v1/deliveries" + query);
    simdjson::dom::parser parser;
    std::vector<std::string> items;
    for (auto d : ArrayOf(Parse(parser, r.body), "results")) items.push_back(simdjson::minify(d));
    const Output out = g.out();
    PrintList(
        out, items,
        Table({"ID", "AT", "PROFILE", "EVENT", "STATUS", "LATENCY", "ATTEMPT", "OUTCOME", "ERROR"}),
        "id", [&out](simdjson::dom::element d) -> std::vector<std::string> {
          const int64_t status = Int(d, "status");
          const std::string s = status > 0 ? std::to_string(status) : "error";
          return {Str(d, "id"),
                  FormatTime(Int(d, "at")),
                  Str(d, "profileId"),
                  Str(d, "channel") + ":" + Str(d, "event"),
                  status >= 200 && status < 300 ? out.Green(s) : out.Red(s),
                  FormatMs(Num(d, "latencyMs")),
                  std::to_string(Int(d, "attempt")) + "/" + std::to_string(Int(d, "maxAttempts")),
                  Str(d, "outcome"),
                  Str(d, "error")};
        });
  });
  auto* show = cmd->add_subcommand("show", "one request and its answer");
  show->add_option("id", a->id)->required();
  show->callback([&g, a] {
    const auto r = g.client()->Checked("GET", "/v1/deliveries?limit=1000");
    simdjson::dom::parser parser;
    for (auto d : ArrayOf(Parse(parser, r.body), "results")) {
      if (Str(d, "id") == a->id) return PrintJson(g.out(), simdjson::minify(d));
    }
    throw Failure(kNotFound, "delivery " + a->id + " is not among the latest kept");
  });
  auto* resend = cmd->add_subcommand("resend", "send a request's body again, same webhook-id");
  resend->add_option("id", a->id)->required();
  resend->callback([&g, a] {
    const auto r = g.client()->Checked("POST", "/v1/deliveries/" + UrlEncode(a->id) + "/resend");
    PrintWritten(g.out(), r, "delivery " + a->id + " queued again");
  });
}

// Client certificates for mTLS: the platform's certificates API. The PEM and its passphrase are
// read from files, never from the command line (where `ps` would show them).
void AddCertificates(CLI::App& app, Globals& g) {
  struct Args {
    std::string id, file, passphrase_file, url;
  };
  auto a = std::make_shared<Args>();
  const std::string path = "/subscriptions/1/certificates";
  auto* cmd = app.add_subcommand("cert", "client certificates (mTLS): ls, get, upload, rm, test");
  cmd->require_subcommand(1);
  cmd->add_subcommand("ls", "list them, with validity and status")->callback([&g, path] {
    auto client = g.client();
    PrintList(g.out(), AllPages(*client, path),
              Table({"ID", "ISSUED TO", "ISSUED BY", "VALID UNTIL", "STATUS"}), "certificateId",
              [](simdjson::dom::element c) -> std::vector<std::string> {
                return {Str(c, "certificateId"), Str(c, "issuedTo"), Str(c, "issuedBy"),
                        FormatTime(Int(c, "validUntil")), Str(c, "certificateStatus")};
              });
  });
  auto* get = cmd->add_subcommand("get", "show one (never its key)");
  get->add_option("id", a->id)->required();
  get->callback([&g, a, path] {
    PrintJson(g.out(), g.client()->Checked("GET", path + "/" + UrlEncode(a->id)).body);
  });
  auto* upload = cmd->add_subcommand("upload", "upload a PEM with the private key and its chain");
  upload->add_option("id", a->id)->required();
  upload->add_option("--file", a->file, "the PEM file (key and certificates), or - (stdin)")
      ->required();
  upload->add_option("--passphrase-file", a->passphrase_file, "the encrypted key's passphrase");
  upload->callback([&g, a, path] {
    const std::string pem = ReadData(a->file == "-" ? a->file : "@" + a->file);
    std::string phrase = a->passphrase_file.empty() ? "" : ReadData("@" + a->passphrase_file);
    while (!phrase.empty() && (phrase.back() == '\n' || phrase.back() == '\r')) phrase.pop_back();
    std::string body;
    herald::JsonWriter w(body);
    w.BeginObject().Field("certificateId", a->id);
    w.Field("certificateContent", absl::Base64Escape(pem));
    if (!phrase.empty()) w.Field("passphrase", absl::Base64Escape(phrase));
    w.EndObject();
    PrintWritten(g.out(), g.client()->Checked("POST", path, body),
                 "certificate " + a->id + " uploaded");
  });
  auto* rm = cmd->add_subcommand("rm", "delete one (refused while a profile uses it)");
  rm->add_option("id", a->id)->required();
  rm->callback([&g, a, path] {
    const auto r = g.client()->Checked("DELETE", path + "/" + UrlEncode(a->id));
    PrintWritten(g.out(), r, "certificate " + a->id + " deleted");
  });
  auto* test = cmd->add_subcommand("test", "a TLS connection to URL presenting it (no event)");
  test->add_option("id", a->id)->required();
  test->add_option("url", a->url)->required();
  test->callback([&g, a, path] {
    std::string body;
    herald::JsonWriter(body)
        .BeginObject()
        .Field("certificateId", a->id)
        .Field("webhookUrl", a->url)
        .EndObject();
    const auto r = g.client()->Checked("POST", path + "/test/webhook", body);
    simdjson::dom::parser parser;
    const auto result = Parse(parser, r.body);
    const Output out = g.out();
    if (!out.table()) {
      std::cout << r.body << "\n";
    } else if (Str(result, "result") == "SUCCESS") {
      std::cout << out.Green("SUCCESS") << "  " << a->url << "\n";
    } else {
      std::cout << out.Red("FAIL") << "  " << a->url << "\n";
      for (auto reason : ArrayOf(result, "failReasons")) {
        std::cout << "  " << std::string_view(reason.get_string().value_unsafe()) << "\n";
      }
      if (!Str(result, "hint").empty()) std::cout << "  hint: " << Str(result, "hint") << "\n";
    }
    if (Str(result, "result") != "SUCCESS")
      throw Failure(kServerError, "the connection test failed");
  });
}

}  // namespace

void AddResourceCommands(CLI::App& app, Globals& g) {
  AddStatus(app, g);
  AddCatalog(app, g);
  AddSubscriptions(app, g);
  AddKind(app, g,
          {"profile",
           "/subscriptions/1/profiles",
           "profileId",
           {"ID", "URL", "SECURITY", "BUCKET", "WINDOW", "RATE", "DISABLED"},
           [](simdjson::dom::element p) -> std::vector<std::string> {
             const int64_t rate = Int(p, "rateLimit", -1);
             return {Str(p, "profileId"),
                     Str(p["webhook"], "notifyUrl"),
                     Str(p["security"], "authId").empty() ? "-" : Str(p["security"], "authId"),
                     std::to_string(Int(p, "maxBucketSize")),
                     std::to_string(Int(p, "windowSize")),
                     rate < 0 ? "-" : std::to_string(rate),
                     Bool(p, "disabled") ? "yes" : "no"};
           }},
          "notification profiles: ls, get, create, update, rm");
  AddKind(app, g,
          {"security",
           "/subscriptions/1/security",
           "authId",
           {"ID", "TYPE"},
           [](simdjson::dom::element s) -> std::vector<std::string> {
             return {Str(s, "authId"), Str(s, "type")};
           }},
          "security settings (secrets never shown): ls, get, create, update, rm");
  AddCertificates(app, g);
  AddImportExport(app, g);
  AddDeadLetters(app, g);
  AddDeliveries(app, g);
}

}  // namespace heraldctl
