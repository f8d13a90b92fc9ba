// The data plane: see router.h.
#include "engine/api/router.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>

#include "engine/common/hash.h"
#include "engine/dispatch/notification_builder.h"
#include "engine/index/matcher.h"
#include "engine/parse/envelope_parser.h"
#include "engine/parse/native_extractor.h"

namespace herald::api {
namespace {

// Per-router counters, on their own cache lines; summed on read.
struct alignas(64) RouterCounters {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> rejected{0};
  std::atomic<uint64_t> rejected_by_reason[kRejectReasonCount] = {};
  std::atomic<uint64_t> matched{0};
  std::atomic<uint64_t> unmatched{0};
  std::atomic<uint64_t> enqueued{0};
  std::atomic<uint64_t> back_pressured{0};
};

inline void Bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
  // Only the thread holding the router context writes its counters.
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

bool IsBlank(const char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') return false;
  }
  return true;
}

// More than one non-blank line means NDJSON.
bool LooksLikeNdjson(const char* data, size_t len) {
  const char* nl = static_cast<const char*>(std::memchr(data, '\n', len));
  if (!nl) return false;
  const size_t rest = len - static_cast<size_t>(nl + 1 - data);
  for (size_t i = 0; i < rest; ++i) {
    const char c = nl[1 + i];
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return true;
  }
  return false;
}

int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct RouterContext {
  explicit RouterContext(parse::ParserLimits limits) : parser(limits), native(limits) {}
  std::atomic<bool> busy{false};
  parse::EnvelopeParser parser;
  parse::NativeExtractor native;
  index::Matcher matcher;
  std::shared_ptr<const index::IndexState> state;
  uint64_t state_version = ~uint64_t{0};
  RouterCounters counters;
  bool targeted = false;  // this call routes for one profile alone: `only`
  const dispatch::ProfileQueue* only = nullptr;
  uint32_t first_event = 0;  // with `targeted`: events before it are skipped
  // The log's refusal report (LogPosition::refusals), and the queues that refused this input.
  std::vector<QueueRefusal>* refusals = nullptr;
  std::vector<const dispatch::ProfileQueue*> refused;
  std::span<const std::string> waiting;          // LogPosition::waiting
  std::vector<Notification>* collect = nullptr;  // instead of the queue (LogPosition::collect)

  void Begin(const LogPosition& log, const dispatch::ProfileQueue* target) {
    targeted = !log.only_profile.empty();
    only = target;
    first_event = log.first_event;
    refusals = log.sequence != 0 ? log.refusals : nullptr;
    refused.clear();
    waiting = refusals ? log.waiting : std::span<const std::string>();
    collect = log.collect;
  }
};

Router::Router(Options options, std::shared_ptr<const Catalog> catalog,
               const index::IndexManager& index, ingest::BlockPool& pool)
    : options_(options), catalog_(std::move(catalog)), index_(index), pool_(pool) {
  const int n = std::max(4, 2 * static_cast<int>(std::thread::hardware_concurrency()));
  for (int i = 0; i < n; ++i) {
    contexts_.push_back(std::make_unique<RouterContext>(
        parse::ParserLimits{.max_event_bytes = options_.max_event_bytes,
                            .max_payload_depth = options_.max_payload_depth}));
  }
  std::random_device rd;
  next_event_id_.store((uint64_t{rd()} << 32 | rd()) & 0x00ffffffffffffffULL);
}

Router::~Router() = default;

IngestResult Router::Ingest(internal::PayloadBlock* block, size_t size, InputFormat format,
                            std::vector<IngestError>* errors, const LogPosition& log,
                            const dispatch::ProfileQueue* only) {
  block->sequence = log.sequence;
  block->ingested_ns = SteadyNanos();
  IngestResult result;
  RouterContext& ctx = Acquire();
  ctx.Begin(log, only);
  const uint64_t version = index_.published_version();
  if (version != ctx.state_version) {
    ctx.state = index_.Load();
    ctx.state_version = version;
  }
  char* data = block->data();
  const size_t capacity = block->capacity + kInputPadding;
  if (format == InputFormat::kAuto)
    format = LooksLikeNdjson(data, size) ? InputFormat::kNdjson : InputFormat::kSingle;
  if (format == InputFormat::kSingle) {
    RouteOne(ctx, block, data, size, capacity, 1, 0, result, errors);
  } else {
    size_t line = 0, pos = 0;
    while (pos < size) {
      ++line;
      const char* nl = static_cast<const char*>(std::memchr(data + pos, '\n', size - pos));
      const size_t end = nl ? static_cast<size_t>(nl - data) : size;
      size_t len = end - pos;
      if (len > 0 && data[pos + len - 1] == '\r') --len;
      if (!IsBlank(data + pos, len)) {
        RouteOne(ctx, block, data + pos, len, capacity - pos, line, pos, result, errors);
      }
      pos = end + 1;
    }
  }
  ctx.busy.store(false, std::memory_order_release);
  internal::Unref(block);
  return result;
}

IngestResult Router::IngestNative(std::string_view channel, std::string_view event,
                                  std::string_view bytes, std::vector<IngestError>* errors,
                                  const LogPosition& log, const dispatch::ProfileQueue* only) {
  IngestResult result;
  RouterContext& ctx = Acquire();
  ctx.Begin(log, only);
  const int64_t pair = catalog_->PairId(channel, event);
  if (pair < 0) {
    parse::EventView view;
    view.channel = channel;
    view.event = event;
    Reject(ctx,
           catalog_->FindChannel(channel) < 0 ? RejectReason::kUnknownChannel
                                              : RejectReason::kUnknownEvent,
           1, 0, parse::ParseOutcome{}, view, result, errors);
    ctx.busy.store(false, std::memory_order_release);
    return result;
  }
  internal::PayloadBlock* block = pool_.Acquire(bytes.size());
  block->sequence = log.sequence;
  block->ingested_ns = SteadyNanos();
  if (!bytes.empty()) std::memcpy(block->data(), bytes.data(), bytes.size());
  const uint64_t version = index_.published_version();
  if (version != ctx.state_version) {
    ctx.state = index_.Load();
    ctx.state_version = version;
  }
  const uint32_t pair_id = static_cast<uint32_t>(pair);
  ctx.native.Extract(
      block->data(), bytes.size(), block->capacity + kInputPadding,
      catalog_->event_info(pair_id).routing_keys,
      [&](size_t, const parse::EventView& view) { Route(ctx, block, pair_id, view, result); },
      [&](size_t index, const parse::ParseOutcome& outcome) {
        Reject(ctx, outcome.reason, index, 0, outcome, parse::EventView{}, result, errors);
      });
  ctx.busy.store(false, std::memory_order_release);
  internal::Unref(block);
  return result;
}

void Router::AddCounters(Counters& c) const {
  for (const auto& ctx : contexts_) {
    const RouterCounters& r = ctx->counters;
    c.accepted += r.accepted.load(std::memory_order_relaxed);
    c.rejected += r.rejected.load(std::memory_order_relaxed);
    for (int i = 0; i < kRejectReasonCount; ++i) {
      c.rejected_by_reason[i] += r.rejected_by_reason[i].load(std::memory_order_relaxed);
    }
    c.matched += r.matched.load(std::memory_order_relaxed);
    c.unmatched += r.unmatched.load(std::memory_order_relaxed);
    c.enqueued += r.enqueued.load(std::memory_order_relaxed);
    c.back_pressured += r.back_pressured.load(std::memory_order_relaxed);
  }
}

RouterContext& Router::Acquire() {
  // Each thread starts at its own slot, so a thread keeps reusing one warm context.
  static std::atomic<size_t> next_thread_slot{0};
  thread_local const size_t thread_slot = next_thread_slot.fetch_add(1);
  const size_t n = contexts_.size();
  size_t i = thread_slot % n;
  for (;;) {
    for (size_t tries = 0; tries < n; ++tries, i = (i + 1) % n) {
      RouterContext& ctx = *contexts_[i];
      if (!ctx.busy.load(std::memory_order_relaxed) &&
          !ctx.busy.exchange(true, std::memory_order_acquire)) {
        return ctx;
      }
    }
    std::this_thread::yield();
  }
}

void Router::Reject(RouterContext& ctx, RejectReason reason, size_t line, size_t base_offset,
                    const parse::ParseOutcome& outcome, const parse::EventView& view,
                    IngestResult& result, std::vector<IngestError>* errors) {
  ++result.rejected;
  Bump(ctx.counters.rejected);
  Bump(ctx.counters.rejected_by_reason[static_cast<int>(reason)]);
  if (errors) {
    parse::ParseOutcome o = outcome;
    o.ok = false;
    o.reason = reason;
    errors->push_back(IngestError{line, base_offset + outcome.offset, reason,
                                  parse::EnvelopeParser::Describe(o, view)});
  }
}

void Router::RouteOne(RouterContext& ctx, internal::PayloadBlock* block, char* data, size_t len,
                      size_t capacity, size_t line, size_t base_offset, IngestResult& result,
                      std::vector<IngestError>* errors) {
  parse::EventView view;
  const parse::ParseOutcome outcome = ctx.parser.Parse(data, len, capacity, &view);
  if (!outcome.ok) {
    Reject(ctx, outcome.reason, line, base_offset, outcome, view, result, errors);
    return;
  }
  const int64_t pair = catalog_->PairId(view.channel, view.event);
  if (pair < 0) {
    const RejectReason reason = catalog_->FindChannel(view.channel) < 0
                                    ? RejectReason::kUnknownChannel
                                    : RejectReason::kUnknownEvent;
    Reject(ctx, reason, line, base_offset, outcome, view, result, errors);
    return;
  }
  Route(ctx, block, static_cast<uint32_t>(pair), view, result);
}

index::RouteKeys Router::KeysOf(uint32_t pair, const parse::EventView& view) const {
  index::RouteKeys keys;
  keys.pair_id = pair;
  keys.channel = static_cast<uint16_t>(catalog_->channel_of(pair));
  keys.event_index = static_cast<uint16_t>(catalog_->event_of(pair));
  keys.app = view.application_id;
  keys.entity = view.entity_id;
  keys.resource = view.resource;
  keys.user = view.user;
  keys.Hash();
  return keys;
}

absl::StatusOr<RouteExplanation> Router::Explain(std::string_view envelope) const {
  // A parser and matcher of its own: explaining is rare, and must not take a router context.
  parse::EnvelopeParser parser({.max_event_bytes = options_.max_event_bytes,
                                .max_payload_depth = options_.max_payload_depth});
  std::string padded(envelope);
  padded.resize(envelope.size() + kInputPadding);
  parse::EventView view;
  const parse::ParseOutcome outcome =
      parser.Parse(padded.data(), envelope.size(), padded.size(), &view);
  if (!outcome.ok) {
    return absl::InvalidArgumentError(parse::EnvelopeParser::Describe(outcome, view));
  }
  const int64_t pair = catalog_->PairId(view.channel, view.event);
  if (pair < 0) {
    parse::ParseOutcome o = outcome;
    o.ok = false;
    o.reason = catalog_->FindChannel(view.channel) < 0 ? RejectReason::kUnknownChannel
                                                       : RejectReason::kUnknownEvent;
    return absl::InvalidArgumentError(parse::EnvelopeParser::Describe(o, view));
  }
  const index::RouteKeys keys = KeysOf(static_cast<uint32_t>(pair), view);
  index::Matcher matcher;
  std::vector<index::Matcher::Match> all;
  const auto state = index_.Load();
  const auto winners = matcher.Explain(*state, keys, options_.fanout == Fanout::kAll, &all);
  RouteExplanation out;
  out.channel = catalog_->channel_info(keys.pair_id).channel;
  out.event = catalog_->event_info(keys.pair_id).event;
  for (const auto& m : all) {
    const bool winner = std::find(winners.begin(), winners.end(), m.subscription) != winners.end();
    out.matches.push_back({.subscription_id = m.subscription->subscription_id,
                           .group = m.subscription->group,
                           .profile_id = m.subscription->profile_id,
                           .specificity = m.specificity,
                           .winner = winner});
  }
  std::stable_sort(out.matches.begin(), out.matches.end(), [](const auto& a, const auto& b) {
    if (a.winner != b.winner) return a.winner;
    if (a.group != b.group) return a.group < b.group;
    return a.specificity > b.specificity;
  });
  for (const auto* w : winners) out.profiles.push_back(w->profile_id);
  return out;
}

// Matches one parsed event of a known pair and enqueues its notifications.
void Router::Route(RouterContext& ctx, internal::PayloadBlock* block, uint32_t pair,
                   const parse::EventView& view, IngestResult& result) {
  const index::RouteKeys keys = KeysOf(pair, view);
  ++result.accepted;
  Bump(ctx.counters.accepted);
  const auto winners = ctx.matcher.Route(*ctx.state, keys, options_.fanout == Fanout::kAll);
  if (winners.empty()) {
    Bump(ctx.counters.unmatched);
    return;
  }
  ++result.matched;
  Bump(ctx.counters.matched);
  const uint64_t seq = block->sequence;
  uint64_t generated = 0;
  if (view.event_id.empty()) {
    // From a logged input the id depends only on its position and the event's place in it, so
    // a replay sends the same webhook-id.
    // The payload too: should a lost spool tail make a sequence number come again, a
    // different event does not repeat an id a receiver has seen.
    generated = seq != 0
                    ? HashCombine(HashCombine(seq, result.accepted), StableHashBytes(view.payload))
                    : next_event_id_.fetch_add(1, std::memory_order_relaxed);
  }
  const std::string_view event_name = catalog_->event_info(keys.pair_id).event;
  // An event that is a small part of its input gets a block of its own, made for the first
  // notification and shared by the rest: what a queued or held notification keeps alive is
  // then about its own size, never a whole request body that a slow profile has one event of.
  internal::PayloadBlock* source = block;
  std::string_view payload = view.payload, event_id = view.event_id, key = view.key;
  // Up to 2 KiB an input is kept whole (a single event is most of its block); beyond, an
  // event under half of it is copied.
  const size_t own_bytes = payload.size() + event_id.size() + key.size();
  const bool compact = block->capacity >= 2048 && own_bytes < block->capacity / 2;
  const auto make = [&](const internal::CompiledSubscription* winner) {
    if (compact && source == block) {
      source = pool_.Acquire(own_bytes);
      source->sequence = block->sequence;
      source->ingested_ns = block->ingested_ns;
      char* out = source->data();
      for (std::string_view* part : {&payload, &event_id, &key}) {
        if (!part->empty()) std::memcpy(out, part->data(), part->size());
        *part = {out, part->size()};
        out += part->size();
      }
    }
    return NotificationBuilder::Make(source, winner, event_name, payload, event_id, generated, key);
  };
  for (const auto* winner : winners) {
    dispatch::ProfileQueue* queue = winner->queue;
    if (ctx.targeted && (queue != ctx.only || result.accepted < ctx.first_event)) continue;
    if (winner->replay_before != 0 && (seq == 0 || seq >= winner->replay_before)) continue;
    if (ctx.collect) {
      ctx.collect->push_back(make(winner));
      ++result.notifications;
      continue;
    }
    if (seq != 0 && !queue->ReplayWants(seq)) continue;  // finished before the restart
    if (ctx.refusals && !ctx.refused.empty() &&
        std::find(ctx.refused.begin(), ctx.refused.end(), queue) != ctx.refused.end()) {
      ++result.deferred;  // the rest of this input waits in the log with the first refused
      Bump(ctx.counters.back_pressured);
      continue;
    }
    // An ordered profile with earlier inputs waiting in the log: this one waits behind them.
    const bool behind =
        !ctx.waiting.empty() && queue->fifo() &&
        std::find(ctx.waiting.begin(), ctx.waiting.end(), queue->profile_id()) != ctx.waiting.end();
    if (!behind) {
      // Counted before it is queued: a consumer may settle it at once.
      if (seq != 0) queue->tracker().Add(seq, winner->queue_generation);
      if (queue->TryEnqueue(make(winner))) {
        ++result.notifications;
        Bump(ctx.counters.enqueued);
        continue;
      }
      if (seq != 0) queue->tracker().Settle(seq, winner->queue_generation);
    }
    Bump(ctx.counters.back_pressured);
    if (ctx.refusals) {
      ctx.refused.push_back(queue);
      ctx.refusals->push_back({queue->profile_id(), static_cast<uint32_t>(result.accepted)});
      ++result.deferred;
    } else {
      ++result.back_pressured;
    }
  }
  if (source != block) internal::Unref(source);  // the notifications hold their own refs
}

}  // namespace herald::api
