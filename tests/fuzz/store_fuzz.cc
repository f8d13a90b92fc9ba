// Fuzzes what heraldd reads back from data_dir after a crash or a bad disk: a spool segment
// (first byte even) and the delivery cursors file (odd). Whatever the bytes, opening gives a
// usable spool or a clear error — never a crash, never a record that fails its CRC or breaks the
// sequence — and the replay runs.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string_view>

#include "engine/store/delivery_log.h"
#include "engine/store/spool.h"
#include "herald/engine.h"

namespace {

std::string ScratchDir() {
  static const std::string dir = [] {
    std::string templ = (std::filesystem::temp_directory_path() / "herald-fuzz-XXXXXX").string();
    if (!mkdtemp(templ.data())) std::abort();
    return templ;
  }();
  std::filesystem::remove_all(dir + "/data");
  std::filesystem::create_directories(dir + "/data/spool");
  return dir + "/data";
}

herald::Engine& TheEngine() {
  static auto engine = [] {
    auto e = herald::Engine::Create({.catalog_path = "configs/catalog.json"});
    if (!e.ok()) std::abort();
    herald::NotificationProfile p;
    p.profile_id = "p1";
    p.webhook.notify_url = "https://example.com/hook";
    if (!(*e)->CreateProfile(p).ok()) std::abort();
    herald::Subscription s;
    s.subscription_id = "s1";
    s.channel = "SMS";
    s.profile_id = "p1";
    if (!(*e)->CreateSubscription(s).ok()) std::abort();
    (*e)->FlushIndex();
    return *std::move(e);
  }();
  return *engine;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string dir = ScratchDir();
  if (data[0] % 2 == 0) {
    std::ofstream(dir + "/spool/00000000000000000001.seg", std::ios::binary) << bytes;
    auto spool = herald::store::Spool::Open({.dir = dir + "/spool"});
    if (!spool.ok()) {
      if (spool.status().message().empty()) std::abort();
      return 0;
    }
    uint64_t expected = 1;
    auto s = (*spool)->Read(1, [&](uint64_t seq, std::string_view) {
      if (seq != expected++) std::abort();
      return true;
    });
    if (!s.ok() || expected != (*spool)->next_seq()) std::abort();
    const std::string_view record[] = {"after"};
    auto seq = (*spool)->Append(record);
    if (!seq.ok() || *seq != expected) std::abort();
  } else {
    {
      // One record for the replay to route, then the fuzzed cursors.
      auto spool = herald::store::Spool::Open({.dir = dir + "/spool"});
      if (!spool.ok()) std::abort();
      const std::string_view record[] = {R"(S{"channel":"SMS","event":"DELIVERY","payload":{}})"};
      if (!(*spool)->Append(record).ok()) std::abort();
    }
    std::ofstream(dir + "/cursors", std::ios::binary) << bytes;
    herald::Engine& engine = TheEngine();
    auto log = herald::store::DeliveryLog::Open({.data_dir = dir}, engine);
    if (!log.ok()) {
      if (log.status().message().empty()) std::abort();
      return 0;
    }
    if (!(*log)->Replay().ok()) std::abort();
    std::vector<herald::Notification> drained;
    (void)engine.Poll("p1", 100, &drained);
  }
  return 0;
}
