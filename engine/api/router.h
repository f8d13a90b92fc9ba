// The engine's data plane: a pool of router contexts (parser, matcher, pinned index state,
// counters on their own cache line) that parse an input, resolve each event's pair, match it
// against the published index and enqueue its notifications. Shares no lock with the control
// plane and allocates nothing in steady state (engine_alloc_test).
#pragma once

#include <atomic>
#include <memory>
#include <string_view>
#include <vector>

#include "engine/dispatch/profile_queue.h"
#include "engine/index/index_manager.h"
#include "engine/ingest/block_pool.h"
#include "engine/parse/envelope_parser.h"
#include "herald/catalog.h"
#include "herald/engine.h"

namespace herald::api {

struct RouterContext;

class Router {
 public:
  struct Options {
    size_t max_event_bytes = 0;
    int max_payload_depth = 0;
    Fanout fanout = Fanout::kAll;
  };
  Router(Options options, std::shared_ptr<const Catalog> catalog, const index::IndexManager& index,
         ingest::BlockPool& pool);
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Routes the first `size` bytes of `block` (one reference, taken over); `only` is the queue
  // `log.only_profile` names, or nullptr.
  IngestResult Ingest(internal::PayloadBlock* block, size_t size, InputFormat format,
                      std::vector<IngestError>* errors, const LogPosition& log,
                      const dispatch::ProfileQueue* only);
  IngestResult IngestNative(std::string_view channel, std::string_view event,
                            std::string_view bytes, std::vector<IngestError>* errors,
                            const LogPosition& log, const dispatch::ProfileQueue* only);

  // Engine::Explain.
  absl::StatusOr<RouteExplanation> Explain(std::string_view envelope) const;

  // Adds every context's counters into `c`.
  void AddCounters(Counters& c) const;

 private:
  RouterContext& Acquire();
  void Reject(RouterContext& ctx, RejectReason reason, size_t line, size_t base_offset,
              const parse::ParseOutcome& outcome, const parse::EventView& view,
              IngestResult& result, std::vector<IngestError>* errors);
  void RouteOne(RouterContext& ctx, internal::PayloadBlock* block, char* data, size_t len,
                size_t capacity, size_t line, size_t base_offset, IngestResult& result,
                std::vector<IngestError>* errors);
  void Route(RouterContext& ctx, internal::PayloadBlock* block, uint32_t pair,
             const parse::EventView& view, IngestResult& result);
  // The routing keys of a parsed event of a known pair, hashed.
  index::RouteKeys KeysOf(uint32_t pair, const parse::EventView& view) const;

  const Options options_;
  const std::shared_ptr<const Catalog> catalog_;
  const index::IndexManager& index_;
  ingest::BlockPool& pool_;
  std::vector<std::unique_ptr<RouterContext>> contexts_;
  std::atomic<uint64_t> next_event_id_{0};
};

}  // namespace herald::api
