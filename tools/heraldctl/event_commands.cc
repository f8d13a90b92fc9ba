// heraldctl send, explain and bench: envelopes built from the catalog's example payloads.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <thread>

#include "engine/common/json_writer.h"
#include "tools/heraldctl/cli.h"

namespace heraldctl {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

struct EnvelopeArgs {
  std::string channel, event, data;
  std::vector<std::string> sets;
};

void AddEnvelopeOptions(CLI::App* cmd, EnvelopeArgs& a) {
  cmd->add_option("channel", a.channel, "the catalog channel, e.g. SMS")->required();
  cmd->add_option("event", a.event, "the catalog event, e.g. DELIVERY")->required();
  cmd->add_option("--data", a.data,
                  "the envelope's other fields as a JSON object (eventId, applicationId, "
                  "entityId, resource, user, key, payload): JSON, @file or - (stdin)");
  cmd->add_option("--set", a.sets, "field=value, e.g. applicationId=shop (repeatable)");
}

// The envelope's fields; the payload is the catalog event's example unless given.
Fields Envelope(Client& client, const EnvelopeArgs& a) {
  Fields fields;
  std::string json;
  herald::AppendJsonString(json, a.channel);
  fields.emplace_back("channel", json);
  json.clear();
  herald::AppendJsonString(json, a.event);
  fields.emplace_back("event", json);
  if (!a.data.empty()) {
    for (auto& f : ObjectFields(ReadData(a.data), "--data")) {
      if (f.first == "channel" || f.first == "event") {
        throw Failure(kUsage, "--data: the channel and event are the command's arguments");
      }
      fields.push_back(std::move(f));
    }
  }
  for (const auto& s : a.sets) ApplySet(fields, s);
  const bool has_payload =
      std::any_of(fields.begin(), fields.end(), [](const auto& f) { return f.first == "payload"; });
  if (!has_payload) {
    const auto r = client.Call(
        "GET", "/v1/catalog/" + UrlEncode(a.channel) + "/" + UrlEncode(a.event) + "/example");
    if (r.status == 404) {
      throw Failure(kNotFound, a.channel + " " + a.event +
                                   " is not in the catalog (heraldctl catalog search …)");
    }
    if (r.status != 200) throw Failure(ExitCodeFor(r.status), ErrorText(r));
    fields.emplace_back("payload", r.body);
  }
  return fields;
}

// n-th copy of an envelope: its eventId, when it has one, gets "-n".
std::string Copy(Fields fields, uint64_t n) {
  for (auto& [k, v] : fields) {
    if (k == "eventId" && v.size() >= 2 && v.front() == '"') {
      v.insert(v.size() - 1, "-" + std::to_string(n));
    }
  }
  return JoinObject(fields);
}

struct SendResult {
  uint64_t accepted = 0, rejected = 0;
  std::vector<std::pair<uint64_t, std::string>> errors;
};

// Posts `lines` envelopes as one NDJSON request; `first` numbers them.
void PostBatch(Client& client, const std::string& body, uint64_t first, SendResult& out) {
  const auto r = client.Call("POST", "/v1/events", body, "application/x-ndjson");
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if ((r.status != 202 && r.status != 400) || parser.parse(r.body).get(root) != simdjson::SUCCESS) {
    throw Failure(ExitCodeFor(r.status), ErrorText(r));
  }
  out.accepted += static_cast<uint64_t>(Int(root, "accepted"));
  out.rejected += static_cast<uint64_t>(Int(root, "rejected"));
  simdjson::dom::array errors;
  if (root["errors"].get_array().get(errors) == simdjson::SUCCESS) {
    for (auto e : errors) {
      out.errors.emplace_back(first + static_cast<uint64_t>(Int(e, "line")) - 1, Str(e, "error"));
    }
  }
}

void AddSend(CLI::App& app, Globals& g) {
  struct Args : EnvelopeArgs {
    uint64_t count = 1;
    double rate = 0;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "send", "post an event: CHANNEL EVENT, its payload the catalog's example unless given");
  AddEnvelopeOptions(cmd, *a);
  cmd->add_option("--count", a->count, "how many (eventIds get -1, -2, …)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--rate", a->rate, "events per second (default: as fast as heraldd takes them)");
  cmd->callback([&g, a] {
    const Output out = g.out();
    auto client = g.client();
    const Fields fields = Envelope(*client, *a);
    SendResult result;
    if (a->count == 1) {
      PostBatch(*client, JoinObject(fields) + "\n", 1, result);
    } else {
      Progress progress(out, "events", a->count);
      const auto start = std::chrono::steady_clock::now();
      const uint64_t per_batch =
          a->rate > 0 ? std::max<uint64_t>(1, static_cast<uint64_t>(a->rate / 10)) : 1000;
      uint64_t sent = 0;
      while (sent < a->count) {
        std::string body;
        const uint64_t first = sent + 1;
        for (uint64_t i = 0; i < per_batch && sent < a->count; ++i) {
          body += Copy(fields, ++sent);
          body += '\n';
        }
        PostBatch(*client, body, first, result);
        progress.Update(sent);
        if (a->rate > 0) {
          std::this_thread::sleep_until(
              start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                          std::chrono::duration<double>(static_cast<double>(sent) / a->rate)));
        }
      }
      progress.Finish(sent);
    }
    if (out.table()) {
      std::cout << "accepted " << result.accepted << ", rejected " << result.rejected << "\n";
      for (size_t i = 0; i < result.errors.size() && i < 20; ++i) {
        std::cout << "  event " << result.errors[i].first << ": " << result.errors[i].second
                  << "\n";
      }
    } else {
      std::string json;
      herald::JsonWriter w(json);
      w.BeginObject().Field("accepted", result.accepted).Field("rejected", result.rejected);
      w.Key("errors").BeginArray();
      for (const auto& [n, e] : result.errors) {
        w.BeginObject().Field("line", n).Field("error", e).EndObject();
      }
      w.EndArray().EndObject();
      std::cout << json << "\n";
    }
    if (result.rejected > 0) {
      throw Failure(result.accepted > 0 ? kPartial : kUsage,
                    std::to_string(result.rejected) + " event(s) rejected");
    }
  });
}

void AddExplain(CLI::App& app, Globals& g) {
  auto a = std::make_shared<EnvelopeArgs>();
  auto* cmd = app.add_subcommand(
      "explain", "which subscriptions an event would match, and which profiles get it");
  AddEnvelopeOptions(cmd, *a);
  cmd->callback([&g, a] {
    const Output out = g.out();
    auto client = g.client();
    const auto r = client->Checked("POST", "/v1/route/explain", JoinObject(Envelope(*client, *a)));
    if (!out.table()) {
      std::cout << r.body << "\n";
      return;
    }
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    if (parser.parse(r.body).get(root) != simdjson::SUCCESS) {
      throw Failure(kServerError, "heraldd answered something that is not JSON");
    }
    Table t({"SUBSCRIPTION", "GROUP", "SPECIFICITY", "WINNER", "PROFILE"});
    for (auto m : ArrayOf(root, "matches")) {
      const std::string group = Str(m, "group");
      t.Add({Str(m, "subscriptionId"), group.empty() ? "-" : group,
             std::to_string(Int(m, "specificity")), Bool(m, "winner") ? out.Green("yes") : "no",
             Str(m, "profileId")});
    }
    if (t.empty()) {
      std::cout << "no subscription matches " << a->channel << " " << a->event << "\n";
      return;
    }
    std::cout << t.Render() << "notified:";
    for (auto p : ArrayOf(root, "profiles")) {
      const std::string state = Str(p, "state");
      std::cout << " " << Str(p, "profileId")
                << (state == "healthy" ? "" : " (" + out.Red(state) + ")");
    }
    std::cout << "\n";
  });
}

void AddBench(CLI::App& app, Globals& g) {
  struct Args : EnvelopeArgs {
    uint64_t events = 100'000;
    uint64_t batch = 1000;
  };
  auto a = std::make_shared<Args>();
  a->channel = "SMS";
  a->event = "DELIVERY";
  auto* cmd = app.add_subcommand(
      "bench", "ingest throughput and latency from here: --events N in NDJSON batches");
  cmd->add_option("channel", a->channel, "default SMS");
  cmd->add_option("event", a->event, "default DELIVERY");
  cmd->add_option("--data", a->data, "the envelope's other fields (see send)");
  cmd->add_option("--set", a->sets, "field=value (repeatable)");
  cmd->add_option("--events", a->events, "how many (default 100000)")->check(CLI::PositiveNumber);
  cmd->add_option("--batch", a->batch, "events per request (default 1000)")
      ->check(CLI::Range(1, 100000));
  cmd->callback([&g, a] {
    const Output out = g.out();
    auto client = g.client();
    const std::string line = JoinObject(Envelope(*client, *a)) + "\n";
    std::string body;
    for (uint64_t i = 0; i < a->batch; ++i) body += line;  // pre-built: the loop measures heraldd
    Progress progress(out, "events", a->events);
    std::vector<double> latencies;
    SendResult result;
    const auto start = std::chrono::steady_clock::now();
    uint64_t sent = 0;
    while (sent < a->events) {
      const uint64_t n = std::min(a->batch, a->events - sent);
      const auto t0 = std::chrono::steady_clock::now();
      PostBatch(*client, n == a->batch ? body : body.substr(0, n * line.size()), sent + 1, result);
      latencies.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      sent += n;
      progress.Update(sent);
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    progress.Finish(sent);
    std::sort(latencies.begin(), latencies.end());
    auto q = [&](double f) {
      return latencies[std::min(latencies.size() - 1, static_cast<size_t>(f * latencies.size()))];
    };
    const double rate = static_cast<double>(result.accepted) / seconds;
    if (out.table()) {
      std::printf("%llu events in %.2f s: %.0f events/s accepted (%llu rejected)\n",
                  static_cast<unsigned long long>(sent), seconds, rate,
                  static_cast<unsigned long long>(result.rejected));
      std::printf("request of %llu events: p50 %s, p99 %s, max %s\n",
                  static_cast<unsigned long long>(a->batch), FormatMs(q(0.5)).c_str(),
                  FormatMs(q(0.99)).c_str(), FormatMs(latencies.back()).c_str());
    } else {
      std::string json;
      herald::JsonWriter w(json);
      w.BeginObject()
          .Field("events", sent)
          .Field("accepted", result.accepted)
          .Field("rejected", result.rejected)
          .Field("seconds", seconds)
          .Field("eventsPerSecond", rate)
          .Field("requestP50Ms", q(0.5))
          .Field("requestP99Ms", q(0.99))
          .EndObject();
      std::cout << json << "\n";
    }
  });
}

}  // namespace

void AddEventCommands(CLI::App& app, Globals& g) {
  AddSend(app, g);
  AddExplain(app, g);
  AddBench(app, g);
}

}  // namespace heraldctl
