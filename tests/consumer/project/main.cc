// A minimal embedder: loads the installed catalog, subscribes, routes one event, polls it; and
// links the library's webhook deliverer.
#include <cstdio>
#include <vector>

#include "herald/engine.h"
#include "herald/webhook_deliverer.h"

int main() {
  herald::EngineOptions options;
  options.catalog_path = HERALD_CATALOG;
  auto engine = herald::Engine::Create(options);
  if (!engine.ok()) {
    std::fprintf(stderr, "create: %s\n", std::string(engine.status().message()).c_str());
    return 1;
  }
  herald::NotificationProfile profile;
  profile.profile_id = "gateway";
  profile.webhook.notify_url = "https://example.com/hook";
  herald::Subscription subscription;
  subscription.subscription_id = "sms-delivery";
  subscription.channel = "SMS";
  subscription.events = {"DELIVERY"};
  subscription.profile_id = "gateway";
  if (!(*engine)->CreateProfile(profile).ok() ||
      !(*engine)->CreateSubscription(subscription).ok()) {
    std::fprintf(stderr, "control plane failed\n");
    return 1;
  }
  (*engine)->FlushIndex();
  (*engine)->Ingest(R"({"channel":"SMS","event":"DELIVERY","eventId":"e-1","payload":{"ok":1}})");
  std::vector<herald::Notification> out;
  auto n = (*engine)->Poll("gateway", 10, &out);
  if (!n.ok() || *n != 1 || out[0].payload() != R"({"ok":1})" || out[0].webhook_id() != "e-1") {
    std::fprintf(stderr, "expected one notification with the payload verbatim\n");
    return 1;
  }
  auto deliverer = herald::WebhookDeliverer::Create({});
  if (!deliverer.ok()) {
    std::fprintf(stderr, "deliverer: %s\n", std::string(deliverer.status().message()).c_str());
    return 1;
  }
  (*deliverer)->Stop(std::chrono::milliseconds(0));
  std::printf("consumer: routed %.*s to %.*s\n", static_cast<int>(out[0].webhook_id().size()),
              out[0].webhook_id().data(), static_cast<int>(out[0].profile_id().size()),
              out[0].profile_id().data());
  return 0;
}
