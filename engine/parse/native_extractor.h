// Native payloads (POST /v1/events/{channel}/{event}): a channel's own webhook body, e.g. an SMS
// delivery report {"results":[…]}. Each results[] item is an event of its own (a body without a
// results array is one item); its routing keys are read at the JSON pointers the catalog lists
// for the (channel, event), first present string wins. Items are sliced raw, never re-serialized.
//
// One extractor per router thread; not thread-safe. Works in place on a padded buffer.
#pragma once

#include <functional>
#include <string_view>

#include "engine/parse/envelope_parser.h"
#include "herald/catalog.h"

namespace herald::parse {

class NativeExtractor {
 public:
  explicit NativeExtractor(ParserLimits limits = {});

  // Calls `item(index, view)` for every item (index from 1), with view.payload the item's bytes
  // and the routing keys found. A malformed body or item is reported through `error(index,
  // outcome)`; the other items are still delivered. Returns false when the body itself is unusable.
  bool Extract(char* data, size_t len, size_t capacity, const RoutingKeyPointers& pointers,
               const std::function<void(size_t, const EventView&)>& item,
               const std::function<void(size_t, const ParseOutcome&)>& error);

 private:
  ParserLimits limits_;
  simdjson::ondemand::parser body_parser_;
  simdjson::ondemand::parser item_parser_;
  simdjson::dom::parser validator_;
};

}  // namespace herald::parse
