// heraldctl listen (a local receiver that checks Standard Webhooks signatures and prints what
// arrives), sign and verify.
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <thread>

#include "engine/common/json_writer.h"
#include "engine/deliver/signing.h"
#include "engine/server/http_server.h"
#include "tools/heraldctl/cli.h"

namespace heraldctl {
namespace {

std::atomic<bool> g_interrupted{false};
void OnSignal(int) { g_interrupted.store(true); }

herald::SecuritySetting Hmac(const std::string& secret) {
  herald::SecuritySetting s;
  s.type = herald::SecurityType::kHmac;
  s.secret_key = secret;
  return s;
}

// Whether one of the space-separated "v1,<sig>" values is the signature of the message.
bool SignatureMatches(const std::string& secret, std::string_view id, std::string_view timestamp,
                      std::string_view body, std::string_view header) {
  int64_t ts = 0;
  try {
    ts = std::stoll(std::string(timestamp));
  } catch (...) {
    return false;
  }
  const std::string expected = herald::deliver::WebhookSignature(Hmac(secret), id, ts, body);
  while (!header.empty()) {
    const size_t space = header.find(' ');
    const std::string_view one = header.substr(0, space);
    if (one.size() == expected.size() &&
        CRYPTO_memcmp(one.data(), expected.data(), expected.size()) == 0) {
      return true;
    }
    if (space == std::string_view::npos) break;
    header.remove_prefix(space + 1);
  }
  return false;
}

std::string NewSecret() {
  unsigned char bytes[24];
  if (RAND_bytes(bytes, sizeof bytes) != 1) throw Failure(kServerError, "no randomness");
  return "whsec_" +
         herald::deliver::Base64(std::string_view(reinterpret_cast<char*>(bytes), sizeof bytes));
}

std::string Header(const herald::server::HttpRequest& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

void AddListen(CLI::App& app, Globals& g) {
  struct Args {
    std::string host = "127.0.0.1";
    uint16_t port = 0;
    std::string secret, profile, subscribe;
    int respond = 200;
    int delay_ms = 0;
    uint64_t max = 0;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "listen", "a local webhook receiver: checks signatures, prints each delivery");
  cmd->add_option("--host", a->host, "address to listen on (default 127.0.0.1)");
  cmd->add_option("--port", a->port, "port (default: any free one)");
  cmd->add_option("--secret", a->secret, "the HMAC secret to verify with (whsec_…)");
  cmd->add_option("--create-profile", a->profile,
                  "create or update this profile (and an HMAC setting of the same id) to point "
                  "here, with a new secret unless --secret");
  cmd->add_option("--subscribe", a->subscribe,
                  "with --create-profile: subscribe it to CHANNEL or CHANNEL:EVENT[,EVENT…]");
  cmd->add_option("--respond", a->respond, "the status to answer (default 200), e.g. 500 or 410")
      ->check(CLI::Range(200, 599));
  cmd->add_option("--delay", a->delay_ms, "wait this many ms before answering");
  cmd->add_option("--max", a->max, "exit after this many deliveries");
  cmd->callback([&g, a] {
    const Output out = g.out();
    if (!a->subscribe.empty() && a->profile.empty()) {
      throw Failure(kUsage, "--subscribe needs --create-profile");
    }
    std::string secret = a->secret;
    if (secret.empty() && !a->profile.empty()) secret = NewSecret();
    std::mutex mu;
    std::condition_variable cv;
    uint64_t received = 0;
    herald::server::HttpServer server(
        {.host = a->host,
         .port = a->port,
         .threads = 1,
         .max_requests_per_second = 0,
         .keep_headers = true},
        [&](herald::server::HttpRequest& req, herald::server::HttpResponse& res) {
          if (a->delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(a->delay_ms));
          const std::string id = Header(req, "webhook-id");
          const std::string ts = Header(req, "webhook-timestamp");
          const std::string sig = Header(req, "webhook-signature");
          std::string check = "unsigned";
          if (!sig.empty() || !secret.empty()) {
            check = secret.empty()                                    ? "not checked (no --secret)"
                    : SignatureMatches(secret, id, ts, req.body, sig) ? "valid"
                                                                      : "INVALID";
          }
          std::string line;
          if (out.table()) {
            line = FormatTime(std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count()) +
                   "  " + req.method + " " + req.target + "  " + Header(req, "x-herald-channel") +
                   ":" + Header(req, "x-herald-event") + "  id " + id + "  signature " +
                   (check == "valid"     ? out.Green(check)
                    : check == "INVALID" ? out.Red(check)
                                         : check) +
                   "  → " + std::to_string(a->respond) + "\n  " + req.body + "\n";
          } else {
            herald::JsonWriter w(line);
            w.BeginObject()
                .Field("method", req.method)
                .Field("target", req.target)
                .Field("webhookId", id)
                .Field("timestamp", ts)
                .Field("signature", check)
                .Field("channel", Header(req, "x-herald-channel"))
                .Field("event", Header(req, "x-herald-event"))
                .Field("subscription", Header(req, "x-herald-subscription"))
                .Field("status", a->respond)
                .Field("body", req.body)
                .EndObject();
            line += "\n";
          }
          {
            std::lock_guard lock(mu);
            std::cout << line << std::flush;
            ++received;
          }
          cv.notify_all();
          res.status = a->respond;
          res.body = a->respond < 300 ? "{\"received\":true}"
                                      : "{\"error\":\"heraldctl listen --respond\"}";
        });
    if (auto s = server.Start(); !s.ok()) throw Failure(kUsage, std::string(s.message()));
    const std::string url = "http://" + a->host + ":" + std::to_string(server.port()) + "/";
    if (!a->profile.empty()) {
      auto client = g.client();
      std::string security;
      herald::JsonWriter w(security);
      w.BeginObject()
          .Field("authId", a->profile)
          .Field("type", "HMAC")
          .Key("credentials")
          .BeginObject()
          .Field("secretKey", secret)
          .Field("algorithm", "HMAC_SHA_256")
          .EndObject()
          .EndObject();
      const std::string id = UrlEncode(a->profile);
      if (client->Call("PUT", "/subscriptions/1/security/" + id, security).status == 404) {
        client->Checked("POST", "/subscriptions/1/security", security);
      }
      std::string profile;
      herald::JsonWriter p(profile);
      p.BeginObject()
          .Field("profileId", a->profile)
          .Key("webhook")
          .BeginObject()
          .Field("notifyUrl", url)
          .EndObject()
          .Key("security")
          .BeginObject()
          .Field("authId", a->profile)
          .EndObject()
          .EndObject();
      if (client->Call("PUT", "/subscriptions/1/profiles/" + id, profile).status == 404) {
        client->Checked("POST", "/subscriptions/1/profiles", profile);
      }
      if (!a->subscribe.empty()) {
        const size_t colon = a->subscribe.find(':');
        const std::string channel = a->subscribe.substr(0, colon);
        std::vector<std::string> events;
        if (colon != std::string::npos) {
          std::string_view rest = std::string_view(a->subscribe).substr(colon + 1);
          while (!rest.empty()) {
            const size_t comma = rest.find(',');
            events.emplace_back(rest.substr(0, comma));
            if (comma == std::string_view::npos) break;
            rest.remove_prefix(comma + 1);
          }
        }
        std::string sub;
        herald::JsonWriter s(sub);
        s.BeginObject()
            .Field("subscriptionId", a->profile + "-" + channel)
            .Strings("events", events);
        s.Key("profile").BeginObject().Field("profileId", a->profile).EndObject().EndObject();
        const std::string path = "/subscriptions/1/subscription/" + UrlEncode(channel);
        if (client->Call("PUT", path + "/" + UrlEncode(a->profile + "-" + channel), sub).status ==
            404) {
          client->Checked("POST", path, sub);
        }
      }
    }
    std::cerr << "listening on " << url;
    if (!a->profile.empty()) std::cerr << "  (profile " << a->profile << " points here)";
    std::cerr << "\n";
    if (!secret.empty()) std::cerr << "verifying signatures with " << secret << "\n";
    std::cerr << "Ctrl-C to stop\n";
    ::signal(SIGINT, OnSignal);
    ::signal(SIGTERM, OnSignal);
    std::unique_lock lock(mu);
    while (!g_interrupted.load() && (a->max == 0 || received < a->max)) {
      cv.wait_for(lock, std::chrono::milliseconds(100));
    }
    lock.unlock();
    server.Stop();
  });
}

void AddSignVerify(CLI::App& app) {
  struct Args {
    std::string secret, id, signature, body = "-";
    int64_t timestamp = 0;
  };
  auto a = std::make_shared<Args>();
  auto* sign = app.add_subcommand("sign", "the webhook-signature of a body (Standard Webhooks)");
  sign->add_option("--secret", a->secret, "whsec_… or the raw secret")->required();
  sign->add_option("--id", a->id, "the webhook-id")->required();
  sign->add_option("--timestamp", a->timestamp, "Unix seconds (default: now)");
  sign->add_option("body", a->body, "the body: text, @file or - (stdin, the default)");
  sign->callback([a] {
    const int64_t ts = a->timestamp > 0 ? a->timestamp
                                        : std::chrono::duration_cast<std::chrono::seconds>(
                                              std::chrono::system_clock::now().time_since_epoch())
                                              .count();
    std::cout << "webhook-id: " << a->id << "\nwebhook-timestamp: " << ts << "\nwebhook-signature: "
              << herald::deliver::WebhookSignature(Hmac(a->secret), a->id, ts, ReadData(a->body))
              << "\n";
  });
  auto* verify =
      app.add_subcommand("verify", "check a webhook-signature (exit 1 when it does not match)");
  verify->add_option("--secret", a->secret, "whsec_… or the raw secret")->required();
  verify->add_option("--id", a->id, "the webhook-id")->required();
  verify->add_option("--timestamp", a->timestamp, "the webhook-timestamp")->required();
  verify->add_option("--signature", a->signature, "the webhook-signature")->required();
  verify->add_option("body", a->body, "the body: text, @file or - (stdin, the default)");
  verify->callback([a] {
    if (!SignatureMatches(a->secret, a->id, std::to_string(a->timestamp), ReadData(a->body),
                          a->signature)) {
      throw Failure(kServerError, "the signature does not match");
    }
    std::cout << "valid\n";
  });
}

}  // namespace

void AddListenCommands(CLI::App& app, Globals& g) {
  AddListen(app, g);
  AddSignVerify(app);
}

}  // namespace heraldctl
