#include "engine/store/delivery_log.h"

#include <algorithm>
#include <charconv>
#include <iterator>
#include <limits>

#include "engine/common/framed_records.h"
#include "engine/common/strings.h"
#include "engine/model/json_codec.h"

namespace herald::store {
namespace {

constexpr uint64_t kNone = std::numeric_limits<uint64_t>::max();
constexpr std::string_view kCursorFile = "cursors";

// A record is one ingest request: a kind byte, then for native payloads "channel\nevent\n", then
// the body as received.
constexpr char kSingle = 'S';
constexpr char kNdjson = 'N';
constexpr char kNative = 'V';

bool ParseU64(std::string_view text, uint64_t* out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

}  // namespace

absl::StatusOr<Spool::Durability> ParseDurability(std::string_view name) {
  if (name == "none") return Spool::Durability::kNone;
  if (name == "batch") return Spool::Durability::kBatch;
  if (name == "always") return Spool::Durability::kAlways;
  return absl::InvalidArgumentError(
      Cat("durability: \"", name, "\" is not one of none, batch, always"));
}

absl::StatusOr<std::unique_ptr<DeliveryLog>> DeliveryLog::Open(Options options, Engine& engine) {
  auto spool = Spool::Open({.dir = options.data_dir + "/spool",
                            .durability = options.durability,
                            .segment_bytes = options.segment_bytes,
                            .log = options.log});
  if (!spool.ok()) return spool.status();
  std::unique_ptr<DeliveryLog> log(new DeliveryLog(std::move(options), engine, *std::move(spool)));
  const std::string path = log->options_.data_dir + "/" + std::string(kCursorFile);
  uint64_t frontier = 0;
  absl::flat_hash_map<std::string, SavedCursor> cursors;
  // "frontier <seq>", then per profile "profile <id> <cursor> <unsettled seq>…", or "… <cursor> *"
  // when the unsettled ones were too many to list.
  // "route <before> <subscription JSON>": a kept route (KeepRoute).
  std::vector<KeptRoute> routes;
  auto read = ReadRecords(path, [&](std::string_view record) {
    if (record.starts_with("frontier ")) return ParseU64(record.substr(9), &frontier);
    if (record.starts_with("route ")) {
      const std::string_view rest = record.substr(6);
      const size_t space = rest.find(' ');
      KeptRoute route;
      if (space == std::string_view::npos || !ParseU64(rest.substr(0, space), &route.before)) {
        return false;
      }
      auto decoded = model::DecodeSubscription(rest.substr(space + 1));
      if (!decoded.ok()) return false;
      route.subscription = std::move(decoded->subscription);
      routes.push_back(std::move(route));
      return true;
    }
    if (!record.starts_with("profile ")) return false;
    std::vector<std::string_view> fields;
    for (std::string_view rest = record.substr(8); !rest.empty();) {
      const size_t space = rest.find(' ');
      fields.push_back(rest.substr(0, space));
      rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
    }
    SavedCursor saved;
    if (fields.size() < 2 || !ParseU64(fields[1], &saved.cursor)) return false;
    for (size_t i = 2; i < fields.size(); ++i) {
      if (fields[i] == "*" && i + 1 == fields.size()) {
        saved.listed_all = false;
        break;
      }
      uint64_t seq;
      if (!ParseU64(fields[i], &seq)) return false;
      saved.unsettled.push_back(seq);
    }
    cursors[std::string(fields[0])] = std::move(saved);
    return true;
  });
  if (!read.ok()) return read.status();
  if (read->bad_bytes > 0 || (read->records > 0 && frontier == 0)) {
    // Written whole by rename, so this is damage: replay everything kept rather than guess.
    if (log->options_.log) {
      log->options_.log(Cat("spool: ", path, " is damaged at line ", read->bad_line,
                            "; replaying every record kept (duplicates possible, nothing lost)"));
    }
  } else if (read->records > 0 && frontier > log->spool_->next_seq()) {
    // The cursors know records the spool no longer has (durability none, and the machine lost
    // power): they would skip the sequence numbers reused from here on.
    if (log->options_.log) {
      log->options_.log(Cat("spool: ", path, " is ahead of the spool (record ", frontier, " > ",
                            log->spool_->next_seq(),
                            "): records were lost with the machine; replaying every record kept"));
    }
  } else if (read->records > 0) {
    log->had_cursors_ = true;
    log->saved_frontier_ = frontier;
    log->saved_cursors_ = std::move(cursors);
  }
  // Routes are kept even from a damaged file's good part: replaying more is never a loss.
  MutexLock lock(log->routes_mu_);
  for (auto& route : routes) route.id = log->next_route_++;
  log->routes_ = std::move(routes);
  return log;
}

DeliveryLog::~DeliveryLog() { Stop(); }

absl::StatusOr<IngestResult> DeliveryLog::AppendAndRoute(std::string_view header,
                                                         std::string_view body, const Router& route,
                                                         OnDurable on_durable) {
  size_t slot;
  {
    // Taken before the append: a checkpoint that reads the spool's next sequence after this
    // sees the slot, so it never counts this record as routed.
    MutexLock lock(routing_mu_);
    auto free = std::find(routing_.begin(), routing_.end(), kNone);
    if (free == routing_.end()) free = routing_.insert(routing_.end(), kNone);
    slot = static_cast<size_t>(free - routing_.begin());
    routing_[slot] = spool_->next_seq();
  }
  const std::string_view parts[] = {header, body};
  // With an asynchronous caller the record is routed before it is durable: a crash before the
  // fdatasync can then only have delivered events the client was never told were accepted.
  auto seq =
      on_durable ? spool_->AppendParts(parts, std::move(on_durable)) : spool_->AppendParts(parts);
  std::optional<IngestResult> result;
  if (seq.ok()) {
    std::vector<QueueRefusal> refusals;
    result = route(*seq, &refusals);
    // Before the record leaves routing_: a checkpoint sees it there or here.
    if (!refusals.empty()) Strand(*seq, refusals);
  }
  {
    MutexLock lock(routing_mu_);
    routing_[slot] = kNone;
  }
  if (!seq.ok()) {
    append_errors_.fetch_add(1, std::memory_order_relaxed);
    return absl::UnavailableError(
        Cat("the event spool could not store the events, so none was accepted: ",
            ToStd(seq.status().message())));
  }
  appended_.fetch_add(1, std::memory_order_relaxed);
  appended_bytes_.fetch_add(header.size() + body.size(), std::memory_order_relaxed);
  return *result;
}

absl::StatusOr<IngestResult> DeliveryLog::Ingest(IngestBuffer buffer, size_t size,
                                                 InputFormat format,
                                                 std::vector<IngestError>* errors,
                                                 OnDurable on_durable) {
  const char kind = format == InputFormat::kNdjson ? kNdjson : kSingle;
  const std::string_view body(buffer ? buffer.data() : "", buffer ? size : 0);
  return AppendAndRoute(
      std::string_view(&kind, 1), body,
      [&, waiting = Waiting()](uint64_t seq, std::vector<QueueRefusal>* refusals) {
        LogPosition log(seq);
        log.refusals = refusals;
        if (waiting) log.waiting = *waiting;
        return engine_.Ingest(std::move(buffer), size, format, errors, log);
      },
      std::move(on_durable));
}

absl::StatusOr<IngestResult> DeliveryLog::Ingest(std::string_view bytes, InputFormat format,
                                                 std::vector<IngestError>* errors,
                                                 OnDurable on_durable) {
  const char kind = format == InputFormat::kNdjson ? kNdjson : kSingle;
  return AppendAndRoute(
      std::string_view(&kind, 1), bytes,
      [&, waiting = Waiting()](uint64_t seq, std::vector<QueueRefusal>* refusals) {
        LogPosition log(seq);
        log.refusals = refusals;
        if (waiting) log.waiting = *waiting;
        return engine_.Ingest(bytes, format, errors, log);
      },
      std::move(on_durable));
}

absl::StatusOr<IngestResult> DeliveryLog::IngestNative(std::string_view channel,
                                                       std::string_view event,
                                                       std::string_view bytes,
                                                       std::vector<IngestError>* errors,
                                                       OnDurable on_durable) {
  const std::string header = Cat(std::string_view(&kNative, 1), channel, "\n", event, "\n");
  return AppendAndRoute(
      header, bytes,
      [&, waiting = Waiting()](uint64_t seq, std::vector<QueueRefusal>* refusals) {
        LogPosition log(seq);
        log.refusals = refusals;
        if (waiting) log.waiting = *waiting;
        return engine_.IngestNative(channel, event, bytes, errors, log);
      },
      std::move(on_durable));
}

IngestResult DeliveryLog::Route(uint64_t seq, std::string_view record,
                                std::vector<QueueRefusal>* refusals, std::string_view only_profile,
                                uint32_t first_event, std::vector<Notification>* collect) {
  if (record.empty()) return {};
  const char kind = record[0];
  record.remove_prefix(1);
  LogPosition log(seq, only_profile, first_event);
  log.refusals = refusals;
  log.collect = collect;
  if (kind == kNative) {
    const size_t a = record.find('\n');
    const size_t b = a == std::string_view::npos ? a : record.find('\n', a + 1);
    if (b == std::string_view::npos) return {};
    return engine_.IngestNative(record.substr(0, a), record.substr(a + 1, b - a - 1),
                                record.substr(b + 1), nullptr, log);
  }
  return engine_.Ingest(record, kind == kNdjson ? InputFormat::kNdjson : InputFormat::kSingle,
                        nullptr, log);
}

absl::Status DeliveryLog::Replay(const std::function<bool()>& stop) {
  const uint64_t end = spool_->next_seq();
  uint64_t from = spool_->first_seq();
  // However it ends, new records are then routed to every profile.
  struct ResetPlans {
    Engine& engine;
    ~ResetPlans() {
      for (const auto& progress : engine.DeliveryProgress()) {
        (void)engine.SetReplayPlan(progress.profile_id, {});
      }
    }
  } reset_plans{engine_};
  if (had_cursors_) {
    from = std::max(from, saved_frontier_);
    for (const auto& progress : engine_.DeliveryProgress()) {
      // Before its cursor a profile owes nothing; between it and the frontier, only the records
      // it had not settled; after the frontier, everything. A profile missing from the file was
      // created after it was written: no record before the frontier had been routed to it.
      ReplayPlan plan{.floor = saved_frontier_, .upto = saved_frontier_};
      if (auto it = saved_cursors_.find(progress.profile_id); it != saved_cursors_.end()) {
        plan.floor = it->second.cursor;
        if (it->second.listed_all) {
          plan.only = it->second.unsettled;
        } else {
          plan.upto = plan.floor;
        }
      }
      from = std::min(from, std::max(plan.floor, spool_->first_seq()));
      if (auto s = engine_.SetReplayPlan(progress.profile_id, std::move(plan)); !s.ok()) return s;
    }
  }
  if (from >= end) {
    replayed_all_ = true;
    return absl::OkStatus();
  }
  // What subscriptions changed since routed to the profiles that still owed it. The routes stay
  // in the engine after the replay, for what full queues refused of it (offered again later);
  // they match no live record (those are all from `end` on), and go once no profile owes them.
  {
    MutexLock lock(routes_mu_);
    for (KeptRoute& route : routes_) {
      route.before = std::min(route.before, end);  // never sealed (a crash): every record kept
      const auto s = engine_.AddReplayRoute(route.subscription, route.before);
      if (!s.ok() && options_.log) {
        options_.log(Cat("spool: subscription ", route.subscription.subscription_id,
                         " as it was for profile ", route.subscription.profile_id,
                         " is not replayed: ", ToStd(s.message())));
      }
    }
  }
  engine_.FlushIndex();  // routed from the first record on
  if (options_.log) {
    options_.log(Cat("spool: replaying records ", from, " to ", end - 1,
                     " (not yet delivered to every profile when heraldd stopped)"));
  }
  // A full queue refuses notifications (a receiver that is down holds its queue full): those
  // wait in the spool and are offered again, to that profile alone, as its queue drains.
  auto last_report = std::chrono::steady_clock::now();
  auto last_checkpoint = last_report;
  uint64_t routed = 0;
  std::vector<QueueRefusal> refusals;
  bool stopped = false;
  auto s = spool_->Read(from, [&](uint64_t seq, std::string_view record) {
    if (seq >= end) return false;
    if (stop && stop()) {
      stopped = true;
      (void)Checkpoint(seq);  // the next start resumes here
      return false;
    }
    if (std::chrono::steady_clock::now() - last_checkpoint >= options_.cursor_interval) {
      // As it goes, so a restart resumes from here rather than from the start.
      last_checkpoint = std::chrono::steady_clock::now();
      if (auto c = Checkpoint(seq); !c.ok() && options_.log) {
        options_.log(Cat("spool: cursors not written during the replay: ", ToStd(c.message())));
      }
    }
    refusals.clear();
    Route(seq, record, &refusals);
    if (!refusals.empty()) Strand(seq, refusals);
    ++routed;
    replayed_.fetch_add(1, std::memory_order_relaxed);
    if (options_.log && std::chrono::steady_clock::now() - last_report > std::chrono::seconds(2)) {
      last_report = std::chrono::steady_clock::now();
      options_.log(Cat("spool: replayed ", routed, " of ", end - from, " records"));
    }
    return true;
  });
  if (!s.ok()) return s;
  if (stopped) {
    return absl::CancelledError(Cat("stopped after replaying ", routed, " of ", end - from,
                                    " records; the next start goes on from there"));
  }
  const uint64_t waiting = stranded_count_.load(std::memory_order_relaxed);
  if (options_.log) {
    options_.log(Cat("spool: replayed ", routed, " records"));
    if (waiting > 0) {
      options_.log(Cat("spool: ", waiting, " record(s) found their profile's queue full; they ",
                       "are offered again as it drains"));
    }
  }
  replayed_all_ = true;
  return absl::OkStatus();
}

std::shared_ptr<const std::vector<std::string>> DeliveryLog::Waiting() const {
  if (!any_waiting_.load(std::memory_order_acquire)) return nullptr;
  MutexLock lock(stranded_mu_);
  return waiting_;
}

void DeliveryLog::RefreshWaiting() {
  auto waiting = std::make_shared<std::vector<std::string>>();
  for (const auto& [id, records] : stranded_) {
    if (!records.empty()) waiting->push_back(id);
  }
  any_waiting_.store(!waiting->empty(), std::memory_order_release);
  waiting_ = waiting->empty() ? nullptr : std::move(waiting);
}

void DeliveryLog::Strand(uint64_t seq, const std::vector<QueueRefusal>& refusals) {
  MutexLock lock(stranded_mu_);
  bool added_profile = false;
  for (const QueueRefusal& r : refusals) {
    auto& records = stranded_[r.profile_id];
    added_profile |= records.empty();
    // Appends race, so a record may come in after a later one: keep the list sorted.
    auto at = std::upper_bound(records.begin(), records.end(), seq,
                               [](uint64_t s, const Stranded& x) { return s < x.seq; });
    records.insert(at, {seq, r.first_event});
  }
  stranded_count_.fetch_add(refusals.size(), std::memory_order_relaxed);
  if (added_profile) RefreshWaiting();
}

size_t DeliveryLog::Reoffer() {
  MutexLock reoffering(reoffer_mu_);
  const auto queues = engine_.queue_stats();
  absl::flat_hash_map<std::string, uint64_t> depths;
  for (const auto& q : queues) depths[q.profile_id] = q.depth;
  // What to offer now: a copy, left in stranded_ (checkpoints keep counting it as unfinished)
  // until it is taken.
  absl::flat_hash_map<std::string, std::vector<Stranded>> offer;
  uint64_t first = UINT64_MAX;
  {
    MutexLock lock(stranded_mu_);
    // A deleted profile's waiting records go with it, as its outstanding notifications do.
    absl::erase_if(stranded_, [&](const auto& entry) {
      if (depths.contains(entry.first)) return false;
      stranded_count_.fetch_sub(entry.second.size(), std::memory_order_relaxed);
      return true;
    });
    RefreshWaiting();
    for (const auto& [id, records] : stranded_) {
      if (records.empty() || depths[id] > options_.reoffer_queue_limit) continue;
      offer[id] = records;
      first = std::min(first, records.front().seq);
    }
  }
  if (offer.empty()) return 0;
  // Per profile: how many of its offered records were taken, and where a refusal left the next.
  absl::flat_hash_map<std::string, size_t> taken;
  absl::flat_hash_map<std::string, uint32_t> refused_from;
  absl::flat_hash_map<std::string, size_t> next;
  for (const auto& [id, records] : offer) next[id] = 0;
  std::vector<QueueRefusal> refusals;
  (void)spool_->Read(first, [&](uint64_t seq, std::string_view record) {
    for (auto it = next.begin(); it != next.end();) {
      const std::vector<Stranded>& records = offer[it->first];
      size_t& i = it->second;
      if (records[i].seq == seq) {
        refusals.clear();
        Route(seq, record, &refusals, it->first, records[i].first_event);
        if (!refusals.empty()) {
          // Full again: this record waits from its newly refused event on, the rest behind it.
          refused_from[it->first] = refusals.front().first_event;
          taken[it->first] = i;
          next.erase(it++);
          continue;
        }
        ++i;
      }
      if (i == records.size()) {
        taken[it->first] = i;
        next.erase(it++);
        continue;
      }
      ++it;
    }
    return !next.empty();
  });
  for (const auto& [id, i] : next) taken[id] = i;  // the spool read ended first
  size_t total = 0;
  MutexLock lock(stranded_mu_);
  for (const auto& [id, count] : taken) {
    total += count;
    const size_t n = count;  // a copy: lambdas cannot capture a structured binding (C++17)
    auto found = stranded_.find(id);
    if (found == stranded_.end()) continue;
    auto& records = found->second;
    const std::vector<Stranded>& offered = offer[id];
    // Remove what was taken (records added meanwhile stay), and move the refused one's start.
    size_t removed = 0;
    std::erase_if(records, [&](const Stranded& r) {
      const bool gone =
          std::binary_search(offered.begin(), offered.begin() + static_cast<ptrdiff_t>(n), r,
                             [](const Stranded& a, const Stranded& b) { return a.seq < b.seq; });
      removed += gone ? 1 : 0;
      return gone;
    });
    stranded_count_.fetch_sub(removed, std::memory_order_relaxed);
    if (auto r = refused_from.find(id); r != refused_from.end() && n < offered.size()) {
      for (auto& rec : records) {
        if (rec.seq == offered[n].seq) rec.first_event = r->second;
      }
    }
    if (records.empty()) stranded_.erase(found);
  }
  RefreshWaiting();
  return total;
}

uint64_t DeliveryLog::Frontier() const {
  MutexLock lock(routing_mu_);
  uint64_t frontier = spool_->next_seq();
  for (uint64_t slot : routing_) frontier = std::min(frontier, slot);
  // Never past what is on disk: after a power loss the spool may come back shorter than what
  // was written, and a cursor beyond its end would skip the sequence numbers it reuses.
  return std::min(frontier, spool_->durable_seq());
}

absl::StatusOr<uint64_t> DeliveryLog::KeepRoute(const Subscription& before_change) {
  // Kept whether or not the profile owes something now: what is routed until the change takes
  // effect counts too. A checkpoint drops it as soon as the profile's cursor passed it.
  uint64_t id;
  {
    MutexLock lock(routes_mu_);
    id = next_route_++;
    routes_.push_back({.id = id, .subscription = before_change});
  }
  // On disk before the change is made: a crash right after it must still find the route.
  if (auto s = Checkpoint(); !s.ok()) {
    DropRoute(id);
    return s;
  }
  return id;
}

void DeliveryLog::SealRoute(uint64_t route) {
  if (route == 0) return;
  MutexLock lock(routes_mu_);
  for (KeptRoute& r : routes_) {
    if (r.id != route) continue;
    r.before = spool_->next_seq();  // what came later met the new version
    // Live too: what a full queue refused of the profile before the change is offered to it
    // again later, as the old subscription would have routed it.
    if (auto s = engine_.AddReplayRoute(r.subscription, r.before); !s.ok() && options_.log) {
      options_.log(Cat("spool: subscription ", r.subscription.subscription_id,
                       " as it was: ", ToStd(s.message())));
    }
  }
}

void DeliveryLog::DropRoute(uint64_t route) {
  if (route == 0) return;
  MutexLock lock(routes_mu_);
  std::erase_if(routes_, [&](const KeptRoute& r) { return r.id == route; });
}

absl::Status DeliveryLog::Checkpoint(uint64_t replay_at) {
  MutexLock lock(checkpoint_mu_);
  // Before the replay, the records it would route are not tracked: cursors would pass them.
  if (replay_at == 0 && !replayed_all_) return absl::OkStatus();
  // What is tracked: every record before `routed` had finished routing, so its notifications are
  // in the progress read next (or settled already). During the replay that is the records it
  // went through; from there on, a restart still owes what the cursors read at start said.
  const uint64_t routed = replay_at > 0 ? replay_at : Frontier();
  const bool resumed = replay_at > 0 && had_cursors_ && replay_at < saved_frontier_;
  const uint64_t frontier = resumed ? saved_frontier_ : routed;
  auto progress = engine_.DeliveryProgress(options_.max_listed_unsettled);
  std::sort(progress.begin(), progress.end(),
            [](const auto& a, const auto& b) { return a.profile_id < b.profile_id; });
  uint64_t slowest = frontier;
  std::string contents = FrameRecord(Cat("frontier ", frontier));
  absl::flat_hash_map<std::string, std::vector<uint64_t>> stranded;
  {
    MutexLock lock(stranded_mu_);
    for (const auto& [id, records] : stranded_) {
      auto& seqs = stranded[id];
      for (const Stranded& r : records) seqs.push_back(r.seq);
    }
  }
  absl::flat_hash_map<std::string, uint64_t> cursors;
  for (auto& p : progress) {
    if (auto it = stranded.find(p.profile_id); it != stranded.end() && !it->second.empty()) {
      // Refused by a full queue and not yet taken, so not tracked: still unfinished.
      std::vector<uint64_t> merged;
      std::merge(p.unsettled.begin(), p.unsettled.end(), it->second.begin(), it->second.end(),
                 std::back_inserter(merged));
      merged.erase(std::unique(merged.begin(), merged.end()), merged.end());
      if (merged.size() > options_.max_listed_unsettled) {
        merged.resize(options_.max_listed_unsettled);
        p.listed_all = false;
      }
      p.unsettled = std::move(merged);
      p.oldest_unsettled = std::min(p.oldest_unsettled, it->second.front());
    }
    uint64_t oldest = p.unsettled.empty() ? p.oldest_unsettled : p.unsettled.front();
    if (auto it = saved_cursors_.find(p.profile_id); resumed && it != saved_cursors_.end()) {
      // Not replayed yet: what the profile owed from `routed` to the old frontier.
      const SavedCursor& saved = it->second;
      if (!saved.listed_all) {
        oldest = std::min(oldest, std::max(saved.cursor, routed));
        p.listed_all = false;
      } else {
        for (uint64_t seq : saved.unsettled) {
          if (seq < routed) continue;
          oldest = std::min(oldest, seq);
          if (p.unsettled.size() < options_.max_listed_unsettled) {
            p.unsettled.push_back(seq);  // above every tracked one: still ascending
          } else {
            p.listed_all = false;
          }
        }
      }
    }
    const uint64_t cursor = std::min(frontier, oldest);
    slowest = std::min(slowest, cursor);
    cursors[p.profile_id] = cursor;
    // What completed out of order ahead of the cursor is left out, so a restart skips it.
    std::string line = Cat("profile ", p.profile_id, " ", cursor);
    for (uint64_t seq : p.unsettled) {
      if (seq >= frontier) break;  // replayed to everyone anyway
      line += Cat(" ", seq);
    }
    if (!p.listed_all) line += " *";
    contents += FrameRecord(line);
  }
  {
    // A kept route goes once its profile settled everything before it, or with its profile.
    MutexLock lock(routes_mu_);
    const bool had_routes = !routes_.empty();
    std::erase_if(routes_, [&](const KeptRoute& route) {
      auto it = cursors.find(route.subscription.profile_id);
      return replay_at == 0 && (it == cursors.end() || it->second >= route.before);
    });
    if (had_routes && routes_.empty()) engine_.ClearReplayRoutes();
    for (const KeptRoute& route : routes_) {
      contents += FrameRecord(
          Cat("route ", route.before, " ", model::EncodeSubscription(route.subscription, nullptr)));
    }
  }
  slowest_cursor_.store(slowest, std::memory_order_relaxed);
  if (contents == last_written_) return spool_->Retain(slowest);
  // Durable before any segment goes: a crash must find cursors no older than the spool.
  if (auto s = WriteFileAtomically(options_.data_dir, std::string(kCursorFile), contents);
      !s.ok()) {
    cursor_errors_.fetch_add(1, std::memory_order_relaxed);
    return s;
  }
  cursor_writes_.fetch_add(1, std::memory_order_relaxed);
  last_written_ = std::move(contents);
  if (replay_at > 0) return absl::OkStatus();  // segments go once the replay is over
  return spool_->Retain(slowest);
}

void DeliveryLog::Start() {
  MutexLock lock(run_mu_);
  if (thread_.joinable() || stop_) return;
  thread_ = std::thread([this] { Run(); });
}

void DeliveryLog::Run() {
  for (;;) {
    {
      MutexLock lock(run_mu_);
      const auto deadline = std::chrono::steady_clock::now() + options_.cursor_interval;
      while (!stop_ && run_cv_.WaitUntil(run_mu_, deadline)) {
      }
      if (stop_) return;
    }
    // Again while it makes progress (for a while): an ordered profile takes nothing newer until
    // all its waiting records are in.
    const auto until = std::chrono::steady_clock::now() + options_.cursor_interval;
    while (Reoffer() > 0 && stranded_count_.load(std::memory_order_relaxed) > 0 &&
           std::chrono::steady_clock::now() < until) {
    }
    if (auto s = Checkpoint(); !s.ok() && options_.log) {
      options_.log(Cat("spool: writing delivery cursors: ", ToStd(s.message())));
    }
    EnforceRetention();
  }
}

void DeliveryLog::Stop() {
  {
    MutexLock lock(run_mu_);
    if (stop_) return;
    stop_ = true;
  }
  run_cv_.NotifyAll();
  if (thread_.joinable()) thread_.join();
  spool_->Flush();  // no ingest waits for an fdatasync after this
  if (auto s = Checkpoint(); !s.ok() && options_.log) {
    options_.log(Cat("spool: writing delivery cursors: ", ToStd(s.message())));
  }
}

DeliveryLog::Stats DeliveryLog::stats() const {
  uint64_t spool_bytes = 0;
  for (const auto& segment : spool_->SegmentList()) spool_bytes += segment.bytes;
  return {.appended = appended_.load(std::memory_order_relaxed),
          .append_errors = append_errors_.load(std::memory_order_relaxed),
          .appended_bytes = appended_bytes_.load(std::memory_order_relaxed),
          .first_seq = spool_->first_seq(),
          .next_seq = spool_->next_seq(),
          .segments = spool_->segments(),
          .fsyncs = spool_->syncs(),
          .replayed = replayed_.load(std::memory_order_relaxed),
          .cursor_writes = cursor_writes_.load(std::memory_order_relaxed),
          .cursor_errors = cursor_errors_.load(std::memory_order_relaxed),
          .slowest_cursor = slowest_cursor_.load(std::memory_order_relaxed),
          .waiting_for_room = stranded_count_.load(std::memory_order_relaxed),
          .spool_bytes = spool_bytes,
          .retention_segments = retention_segments_.load(std::memory_order_relaxed),
          .retention_dead_letters = retention_dead_letters_.load(std::memory_order_relaxed)};
}

}  // namespace herald::store
