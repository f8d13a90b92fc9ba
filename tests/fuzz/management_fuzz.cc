// Fuzzes the management API's request bodies: the first byte picks subscription, profile,
// security setting or certificate upload; decoding never crashes, an accepted body passes
// validation or is refused with field errors, and what the engine accepts encodes and decodes
// back to the same value (a certificate: parses again to itself, and describes).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "engine/model/json_codec.h"
#include "herald/engine.h"

namespace {

herald::Engine& TheEngine() {
  static herald::Engine* engine = [] {
    auto e = herald::Engine::Create({.catalog_path = "configs/catalog.json"});
    if (!e.ok()) std::abort();
    if (!(*e)->CreateProfile({.profile_id = "p", .webhook = {.notify_url = "https://x.test/"}})
             .ok()) {
      std::abort();
    }
    return e->release();
  }();
  return *engine;
}

void Check(const absl::Status& s) {
  if (!s.ok() && s.message().empty()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  herald::Engine& engine = TheEngine();
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  namespace model = herald::model;
  switch (data[0] % 4) {
    case 0: {
      auto req = model::DecodeSubscription(body, "SMS");
      if (!req.ok()) return Check(req.status()), 0;
      auto& s = req->subscription;
      if (s.profile_id.empty()) s.profile_id = "p";
      const absl::Status created = engine.CreateSubscription(s);
      Check(created);
      if (!created.ok()) return 0;
      auto back = model::DecodeSubscription(model::EncodeSubscription(s, nullptr));
      auto stored = engine.GetSubscription(s.subscription_id);
      if (!back.ok() || !stored.ok() || back->subscription != *stored) std::abort();
      if (!engine.DeleteSubscription(s.subscription_id).ok()) std::abort();
      break;
    }
    case 1: {
      auto req = model::DecodeProfile(body);
      if (!req.ok()) return Check(req.status()), 0;
      if (req->inline_security) return 0;
      const absl::Status created = engine.CreateProfile(req->profile);
      Check(created);
      if (!created.ok()) return 0;
      auto back = model::DecodeProfile(model::EncodeProfile(req->profile, /*mask=*/false));
      // An empty content type means application/json, and is written out as such.
      if (req->profile.webhook.content_type.empty()) {
        req->profile.webhook.content_type = "application/json";
      }
      if (!back.ok() || back->profile != req->profile) std::abort();
      if (!engine.DeleteProfile(req->profile.profile_id).ok()) std::abort();
      break;
    }
    case 3: {
      auto upload = model::DecodeCertificateUpload(body);
      if (!upload.ok()) return Check(upload.status()), 0;
      auto c =
          herald::ParseClientCertificate(upload->certificate_id, upload->pem, upload->passphrase);
      if (!c.ok()) return Check(c.status()), 0;
      auto again =
          herald::ParseClientCertificate(c->certificate_id, c->private_key_pem + c->chain_pem, "");
      if (!again.ok() || *again != *c || !herald::DescribeCertificate(*c).ok()) std::abort();
      break;
    }
    default: {
      auto s = model::DecodeSecurity(body);
      if (!s.ok()) return Check(s.status()), 0;
      const absl::Status created = engine.CreateSecurity(*s);
      Check(created);
      if (!created.ok()) return 0;
      auto back = model::DecodeSecurity(model::EncodeSecurity(*s, /*mask=*/false));
      if (!back.ok() || *back != *s) std::abort();
      if (!engine.DeleteSecurity(s->auth_id).ok()) std::abort();
      break;
    }
  }
  return 0;
}
