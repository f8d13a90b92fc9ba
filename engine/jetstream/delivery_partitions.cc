#include "engine/jetstream/delivery_partitions.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "engine/common/hash.h"
#include "engine/common/strings.h"

namespace herald::jetstream {

namespace {

constexpr char kSubscriptionHeader[] = "Herald-Subscription";
constexpr char kChannelHeader[] = "Herald-Channel";
constexpr char kEventHeader[] = "Herald-Event";
constexpr char kIdHeader[] = "Herald-Id";
constexpr char kKeyHeader[] = "Herald-Key";
// A value a header cannot carry verbatim (spaces, controls, non-ASCII) goes base64url-encoded.
constexpr std::string_view kEncodedSuffix = "-B64";

// How long a notification for a profile this instance does not know waits for it to arrive
// through the config watch before it is dropped (the profile was deleted): past a config watch
// that stalled in a node's loss (up to 20 s: reference/jetstream.md §4).
constexpr auto kUnknownProfileWait = std::chrono::seconds(60);

bool Plain(std::string_view v) {
  return std::all_of(v.begin(), v.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

void SetHeader(natsMsg* m, std::string_view key, std::string_view value) {
  if (value.empty()) return;
  if (Plain(value)) {
    natsMsgHeader_Set(m, std::string(key).c_str(), std::string(value).c_str());
    return;
  }
  natsMsgHeader_Set(
      m, Cat(key, kEncodedSuffix).c_str(),
      absl::WebSafeBase64Escape(absl::string_view(value.data(), value.size())).c_str());
}

// A header's value (decoded into `buf` when it came encoded).
std::string_view GetHeader(natsMsg* m, std::string_view key, std::string* buf) {
  const char* value = nullptr;
  if (natsMsgHeader_Get(m, std::string(key).c_str(), &value) == NATS_OK && value != nullptr) {
    return value;
  }
  if (natsMsgHeader_Get(m, Cat(key, kEncodedSuffix).c_str(), &value) != NATS_OK ||
      value == nullptr) {
    return {};
  }
  absl::string_view encoded(value);
  std::string decoded;
  if (!absl::WebSafeBase64Unescape(encoded, &decoded)) return {};
  *buf = std::move(decoded);
  return *buf;
}

}  // namespace

struct DeliveryPartitions::Partition {
  std::atomic<bool> owned{false};
  std::atomic<size_t> held{0};  // of held_; fetching stops at max_held
  uint64_t revision = 0;        // of the lease; the lease thread's alone
  std::chrono::steady_clock::time_point renewed;
  std::thread fetcher;  // started when first owned, kept for life (cnats dislikes churn)
};

struct DeliveryPartitions::Held {
  natsMsg* msg = nullptr;  // owned
  uint64_t seq = 0;        // in the stream: the position it is tracked by
  std::string profile;
  RoutedNotification n;  // points into msg, or into the buffers
  std::string id_buf, key_buf, subscription_buf, channel_buf, event_buf;
  int partition = 0;
  bool queued = false, waiting = false, done = false;
  std::chrono::steady_clock::time_point touched, unknown_since;
  ~Held() {
    if (msg != nullptr) natsMsg_Destroy(msg);
  }
};

DeliveryPartitions::DeliveryPartitions(NatsClient& client, Engine& engine, Options options)
    : client_(client),
      engine_(engine),
      options_(options),
      stream_(client.Name("deliveries")),
      instance_(RandomId()) {
  for (int p = 0; p < std::max(1, client.options().partitions); ++p) {
    parts_.push_back(std::make_unique<Partition>());
  }
}

DeliveryPartitions::~DeliveryPartitions() {
  Stop();
  for (auto& part : parts_) {
    if (part->fetcher.joinable()) part->fetcher.join();
  }
  if (leases_ != nullptr) kvStore_Destroy(leases_);
  if (members_ != nullptr) kvStore_Destroy(members_);
}

absl::StatusOr<std::unique_ptr<DeliveryPartitions>> DeliveryPartitions::Open(NatsClient& client,
                                                                             Engine& engine,
                                                                             Options options) {
  std::unique_ptr<DeliveryPartitions> d(new DeliveryPartitions(client, engine, options));
  if (absl::Status s = d->Bind(); !s.ok()) return s;
  return d;
}

int DeliveryPartitions::PartitionOf(std::string_view profile_id) const {
  return static_cast<int>(StableHashBytes(profile_id) % parts_.size());
}

std::string DeliveryPartitions::Subject(std::string_view profile_id) const {
  return Cat(client_.options().prefix, ".dlv.", PartitionOf(profile_id), ".", profile_id);
}

absl::StatusOr<natsMsg*> DeliveryPartitions::Message(const Notification& n,
                                                     std::string* msg_id) const {
  const std::string subject = Subject(n.profile_id());
  natsMsg* m = nullptr;
  const std::string_view payload = n.payload();
  if (absl::Status s = NatsStatus(natsMsg_Create(&m, subject.c_str(), nullptr, payload.data(),
                                                 static_cast<int>(payload.size())),
                                  "a delivery message");
      !s.ok()) {
    return s;
  }
  SetHeader(m, kSubscriptionHeader, n.subscription_id());
  SetHeader(m, kChannelHeader, n.channel());
  SetHeader(m, kEventHeader, n.event());
  SetHeader(m, kIdHeader, n.webhook_id());
  SetHeader(m, kKeyHeader, n.key());
  const std::string_view id = n.webhook_id();
  *msg_id = Plain(id)
                ? Cat(id, ".", n.profile_id())
                : Cat(ToStd(absl::WebSafeBase64Escape(absl::string_view(id.data(), id.size()))),
                      ".", n.profile_id());
  return m;
}

absl::Status DeliveryPartitions::Bind() {
  const std::string& prefix = client_.options().prefix;
  if (absl::Status s = EnsureStream(
          client_, {.name = stream_,
                    .subjects = Cat(prefix, ".dlv.>"),
                    .description = "herald: notifications, by profile partition, until delivered"});
      !s.ok()) {
    return s;
  }
  if (absl::Status s = EnsureBucket(client_,
                                    {.name = client_.Name("leases"),
                                     .description = "herald: which instance owns each partition",
                                     .ttl = options_.lease_ttl},
                                    &leases_);
      !s.ok()) {
    return s;
  }
  return EnsureBucket(client_,
                      {.name = client_.Name("members"),
                       .description = "herald: the instances alive",
                       .ttl = options_.lease_ttl},
                      &members_);
}

void DeliveryPartitions::Start() {
  if (lease_thread_.joinable()) return;
  stop_.store(false);
  lease_thread_ = std::thread([this] { Leases(); });
  settle_thread_ = std::thread([this] {
    while (!stop_.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      Settle(false);
    }
  });
}

void DeliveryPartitions::Stop() {
  stop_.store(true);
  if (!lease_thread_.joinable()) return;
  lease_thread_.join();
  for (auto& part : parts_) {
    if (part->fetcher.joinable()) part->fetcher.join();
  }
  settle_thread_.join();
  // What is held goes back first, then the leases: the next owner starts where this one
  // stopped, never beside it.
  Settle(true);
  const auto now = std::chrono::steady_clock::now();
  for (int p = 0; p < static_cast<int>(parts_.size()); ++p) Release(p, now);
  kvStore_Delete(members_, Cat("m.", instance_).c_str());
}

void DeliveryPartitions::Release(int p, std::chrono::steady_clock::time_point now) {
  Partition& part = *parts_[p];
  if (!part.owned.exchange(false)) return;
  owned_.fetch_sub(1, std::memory_order_relaxed);
  lease_changes_.fetch_add(1, std::memory_order_relaxed);
  // Renewed well within the TTL, so no other instance can hold it yet: a plain delete frees it
  // at once. Otherwise it is left to age out, so another's lease is never deleted.
  if (now - part.renewed < options_.lease_ttl - options_.renew_every) {
    kvStore_Delete(leases_, Cat("lease.", p).c_str());
  }
}

void DeliveryPartitions::Leases() {
  using Clock = std::chrono::steady_clock;
  auto log = [this](std::string_view line) {
    if (client_.options().log) client_.options().log(line);
  };
  const int count = static_cast<int>(parts_.size());
  // Where this instance starts looking for free partitions: instances spread their first picks.
  const int start = static_cast<int>(StableHashBytes(instance_) % parts_.size());
  absl::flat_hash_map<std::string, Clock::time_point> seen;  // members by last write seen
  kvWatcher* watcher = nullptr;
  Clock::time_point next_tick = Clock::now(), put_at{};
  const auto tick = std::min<Clock::duration>(std::chrono::seconds(1), options_.renew_every / 2);
  while (!stop_.load()) {
    auto now = Clock::now();
    if (watcher == nullptr) {
      kvWatchOptions o;
      kvWatchOptions_Init(&o);
      if (kvStore_WatchAll(&watcher, members_, &o) != NATS_OK) watcher = nullptr;
    }
    if (now < next_tick) {
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_tick - now);
      if (watcher == nullptr) {
        std::this_thread::sleep_for(std::min<Clock::duration>(wait, std::chrono::milliseconds(50)));
        continue;
      }
      kvEntry* e = nullptr;
      const natsStatus st = kvWatcher_Next(&e, watcher, std::max<int64_t>(1, wait.count()));
      if (st != NATS_OK && st != NATS_TIMEOUT) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));  // cnats resets it itself
      } else if (e != nullptr) {
        const std::string_view key = kvEntry_Key(e);
        if (key.starts_with("m.")) {
          std::string id(key.substr(2));
          if (kvEntry_Operation(e) == kvOp_Put) {
            seen[id] = Clock::now();
          } else {
            seen.erase(id);
          }
        }
        kvEntry_Destroy(e);
      }
      continue;
    }
    next_tick = now + tick;

    if (now - put_at >= options_.renew_every) {
      uint64_t rev = 0;
      if (kvStore_Put(&rev, members_, Cat("m.", instance_).c_str(), instance_.data(),
                      static_cast<int>(instance_.size())) == NATS_OK) {
        put_at = now;
      }
    }
    // Renew what is held; a renewal refused means another instance has it now.
    for (int p = 0; p < count; ++p) {
      Partition& part = *parts_[p];
      if (!part.owned.load() || now - part.renewed < options_.renew_every) continue;
      uint64_t rev = 0;
      const std::string key = Cat("lease.", p);
      const auto asked = Clock::now();
      const natsStatus st = kvStore_Update(&rev, leases_, key.c_str(), instance_.data(),
                                           static_cast<int>(instance_.size()), part.revision);
      if (st == NATS_OK) {
        part.revision = rev;
        part.renewed = asked;  // the TTL runs from the write, which came after this
        continue;
      }
      now = Clock::now();  // the call may have taken up to the API wait
      const absl::Status s = NatsStatus(st, Cat("renewing the lease of partition ", p));
      // Unreachable NATS: the lease may still be ours until its TTL runs out.
      if (absl::IsUnavailable(s) &&
          now - part.renewed < options_.lease_ttl - options_.renew_every) {
        continue;
      }
      part.owned.store(false);
      owned_.fetch_sub(1, std::memory_order_relaxed);
      lease_changes_.fetch_add(1, std::memory_order_relaxed);
      log(Cat("lost the lease of delivery partition ", p, ": ", ToStd(s.message())));
    }
    // Take a fair share of the partitions: ceil(partitions / instances alive).
    // Itself always (its own entry may lag: a put that failed, a stalled watch), the others
    // while their entries are fresh.
    size_t live = 1;
    for (const auto& [id, at] : seen) live += id != instance_ && now - at <= options_.lease_ttl;
    live_.store(live, std::memory_order_relaxed);
    const int share = static_cast<int>((parts_.size() + live - 1) / live);
    int owned = static_cast<int>(owned_.load());
    for (int i = count - 1; i >= 0 && owned > share; --i) {
      const int p = (start + i) % count;
      if (!parts_[p]->owned.load()) continue;
      Release(p, Clock::now());
      --owned;
    }
    for (int i = 0; i < count && owned < share && client_.connected(); ++i) {
      const int p = (start + i) % count;
      Partition& part = *parts_[p];
      if (part.owned.load()) continue;
      uint64_t rev = 0;
      const auto asked = Clock::now();
      if (kvStore_Create(&rev, leases_, Cat("lease.", p).c_str(), instance_.data(),
                         static_cast<int>(instance_.size())) != NATS_OK) {
        continue;  // held by another instance
      }
      part.revision = rev;
      part.renewed = asked;
      part.owned.store(true);
      owned_.fetch_add(1, std::memory_order_relaxed);
      lease_changes_.fetch_add(1, std::memory_order_relaxed);
      ++owned;
      if (!part.fetcher.joinable()) part.fetcher = std::thread([this, p] { Fetch(p); });
    }
  }
  if (watcher != nullptr) kvWatcher_Destroy(watcher);
}

bool DeliveryPartitions::Offer(Held& h) {
  const absl::Status s = engine_.Enqueue(h.n, h.seq);
  if (s.ok()) {
    h.queued = true;
    return true;
  }
  if (absl::IsResourceExhausted(s)) return false;
  const auto now = std::chrono::steady_clock::now();
  if (absl::IsNotFound(s) && h.unknown_since == std::chrono::steady_clock::time_point()) {
    h.unknown_since = now;  // a profile just made may not have reached this instance yet
  }
  if (absl::IsNotFound(s) && now - h.unknown_since < kUnknownProfileWait) return false;
  if (client_.options().log) {
    client_.options().log(Cat("dropping notification ", h.n.webhook_id, " for profile ", h.profile,
                              ": ", ToStd(s.message())));
  }
  natsMsg_Ack(h.msg, nullptr);
  dropped_.fetch_add(1, std::memory_order_relaxed);
  h.done = true;
  return true;
}

void DeliveryPartitions::Fetch(int p) {
  Partition& part = *parts_[p];
  const std::string consumer = client_.Name(Cat("dlv_", p));
  const std::string filter = Cat(client_.options().prefix, ".dlv.", p, ".>");
  natsSubscription* sub = nullptr;
  bool reported = false;
  auto report = [&](std::string_view what, natsStatus st, jsErrCode code) {
    if (!reported && client_.options().log) {
      client_.options().log(Cat(what, " ", consumer, ": ",
                                ToStd(NatsStatus(st, "fetch", code).message()), "; retrying"));
    }
    reported = true;
  };
  while (!stop_.load()) {
    if (!part.owned.load() || part.held.load() >= options_.max_held) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    jsErrCode code = static_cast<jsErrCode>(0);
    if (sub == nullptr) {
      // Made by the first owner, not at start: at R3 each consumer is a Raft group, and making
      // 64 of them one after the other held the first start up for 30 s.
      if (absl::Status s = EnsureConsumer(
              client_, {.stream = stream_,
                        .name = consumer,
                        .filter = filter,
                        .description = "herald: one partition's deliveries, on its lease's owner",
                        .ack_wait = client_.options().ack_wait,
                        .max_ack_pending = static_cast<int64_t>(options_.max_held)});
          !s.ok()) {
        if (!reported && client_.options().log) {
          client_.options().log(Cat(ToStd(s.message()), "; retrying"));
        }
        reported = true;
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        continue;
      }
      jsSubOptions so;
      jsSubOptions_Init(&so);
      so.Stream = stream_.c_str();
      so.Consumer = consumer.c_str();
      const natsStatus st = js_PullSubscribe(&sub, client_.js(), filter.c_str(), consumer.c_str(),
                                             nullptr, &so, &code);
      if (st != NATS_OK) {
        sub = nullptr;
        report("binding to", st, code);
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        continue;
      }
    }
    natsMsgList list{};
    const auto asked = std::chrono::steady_clock::now();
    const natsStatus st = FetchBatch(&list, sub, options_.fetch_batch, 200, &code);
    if (st == NATS_OK) {
      reported = false;
      std::vector<std::unique_ptr<Held>> taken;
      for (int i = 0; i < list.Count; ++i) {
        auto h = std::make_unique<Held>();
        h->msg = list.Msgs[i];
        list.Msgs[i] = nullptr;
        jsMsgMetaData* meta = nullptr;
        if (natsMsg_GetMetaData(&meta, h->msg) != NATS_OK) continue;  // not a JetStream one
        h->seq = meta->Sequence.Stream;
        // Each delivery of the message before this one was an attempt (or an owner that died
        // or stopped holding it: counted too, so a schedule never runs longer than it says).
        h->n.prior_attempts = static_cast<int>(std::max<uint64_t>(meta->NumDelivered, 1) - 1);
        jsMsgMetaData_Destroy(meta);
        const std::string_view subject = natsMsg_GetSubject(h->msg);
        h->profile = std::string(subject.substr(subject.rfind('.') + 1));
        h->n.profile_id = h->profile;
        h->partition = p;
        h->n.subscription_id = GetHeader(h->msg, kSubscriptionHeader, &h->subscription_buf);
        h->n.channel = GetHeader(h->msg, kChannelHeader, &h->channel_buf);
        h->n.event = GetHeader(h->msg, kEventHeader, &h->event_buf);
        h->n.webhook_id = GetHeader(h->msg, kIdHeader, &h->id_buf);
        h->n.key = GetHeader(h->msg, kKeyHeader, &h->key_buf);
        h->n.payload = std::string_view(natsMsg_GetData(h->msg),
                                        static_cast<size_t>(natsMsg_GetDataLength(h->msg)));
        h->touched = std::chrono::steady_clock::now();
        taken.push_back(std::move(h));
      }
      fetched_.fetch_add(taken.size(), std::memory_order_relaxed);
      part.held.fetch_add(taken.size());
      MutexLock lock(mu_);
      for (auto& h : taken) {
        by_seq_[h->seq] = h.get();
        // Behind a refused one of its profile it waits too: the profile's order holds.
        auto it = waiting_.find(h->profile);
        if ((it == waiting_.end() || it->second == 0) && Offer(*h)) {
          held_.push_back(std::move(h));
          continue;
        }
        h->waiting = true;
        ++waiting_[h->profile];
        held_.push_back(std::move(h));
      }
      held_count_.store(held_.size(), std::memory_order_relaxed);
    } else if (st != NATS_TIMEOUT) {
      report("fetching from", st, code);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    } else if (std::chrono::steady_clock::now() - asked < std::chrono::milliseconds(10)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // cnats may not wait
    }
    natsMsgList_Destroy(&list);
  }
  if (sub != nullptr) natsSubscription_Destroy(sub);
}

bool DeliveryPartitions::RetryLater(std::span<Notification* const> notifications,
                                    std::chrono::milliseconds delay) {
  MutexLock lock(mu_);
  std::vector<Held*> held;
  for (const Notification* n : notifications) {
    auto it = by_seq_.find(n->sequence());
    if (it == by_seq_.end() || it->second->done || it->second->profile != n->profile_id()) {
      return false;
    }
    held.push_back(it->second);
  }
  for (Held* h : held) {
    natsMsg_NakWithDelay(h->msg, delay.count(), nullptr);
    h->done = true;  // gone from here: its settling only releases the engine's count
    retries_.fetch_add(1, std::memory_order_relaxed);
  }
  return true;
}

void DeliveryPartitions::Settle(bool final_pass) {
  MutexLock lock(mu_);
  if (held_.empty()) return;
  if (!final_pass && !waiting_.empty()) {
    // Offer the refused ones again, in order; a profile refused again keeps the rest waiting.
    absl::flat_hash_set<std::string_view> refused;
    for (auto& h : held_) {
      if (!h->waiting || refused.contains(h->profile)) continue;
      if (!Offer(*h)) {
        refused.insert(h->profile);
        continue;
      }
      h->waiting = false;
      if (auto it = waiting_.find(h->profile); it != waiting_.end() && --it->second == 0) {
        waiting_.erase(it);
      }
    }
  }
  // What the profiles still owe: the sequences they list, and all above the last one listed by
  // a profile that could not list them all.
  absl::flat_hash_set<uint64_t> owed;
  uint64_t unknown_above = UINT64_MAX;
  for (const ProfileProgress& p : engine_.DeliveryProgress(held_.size() + 1)) {
    owed.insert(p.unsettled.begin(), p.unsettled.end());
    if (!p.listed_all) {
      unknown_above =
          std::min(unknown_above, p.unsettled.empty() ? p.oldest_unsettled : p.unsettled.back());
    }
  }
  const auto now = std::chrono::steady_clock::now();
  const auto ack_wait = client_.options().ack_wait;
  size_t waiting = 0;
  auto settle = [&](const std::unique_ptr<Held>& h) {
    if (h->done) return true;
    if (h->queued && !owed.contains(h->seq) && h->seq <= unknown_above) {
      natsMsg_Ack(h->msg, nullptr);
      acked_.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    if (final_pass) {
      natsMsg_Nak(h->msg, nullptr);  // the next owner takes it at once
      return true;
    }
    if (h->waiting) ++waiting;
    if (now - h->touched > ack_wait / 3) {
      natsMsg_InProgress(h->msg, nullptr);
      h->touched = now;
    }
    return false;
  };
  auto settled = [&](const std::unique_ptr<Held>& h) HERALD_REQUIRES(mu_) {
    if (!settle(h)) return false;
    parts_[h->partition]->held.fetch_sub(1);
    // A message naked with no delay may be held again already, as a new Held.
    if (auto it = by_seq_.find(h->seq); it != by_seq_.end() && it->second == h.get()) {
      by_seq_.erase(it);
    }
    return true;
  };
  held_.erase(std::remove_if(held_.begin(), held_.end(), settled), held_.end());
  if (final_pass) waiting_.clear();
  held_count_.store(held_.size(), std::memory_order_relaxed);
  waiting_count_.store(waiting, std::memory_order_relaxed);
}

DeliveryPartitions::Stats DeliveryPartitions::stats() const {
  return {.owned = owned_.load(std::memory_order_relaxed),
          .live_members = live_.load(std::memory_order_relaxed),
          .lease_changes = lease_changes_.load(std::memory_order_relaxed),
          .fetched = fetched_.load(std::memory_order_relaxed),
          .acked = acked_.load(std::memory_order_relaxed),
          .held = held_count_.load(std::memory_order_relaxed),
          .waiting_for_room = waiting_count_.load(std::memory_order_relaxed),
          .dropped = dropped_.load(std::memory_order_relaxed),
          .retries = retries_.load(std::memory_order_relaxed)};
}

}  // namespace herald::jetstream
