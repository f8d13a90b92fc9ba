#include "engine/parse/native_extractor.h"

namespace herald::parse {
namespace ondemand = simdjson::ondemand;

NativeExtractor::NativeExtractor(ParserLimits limits)
    : limits_(limits),
      body_parser_(limits.max_event_bytes),
      item_parser_(limits.max_event_bytes),
      validator_(limits.max_event_bytes) {
  if (validator_.allocate(4096, static_cast<size_t>(limits.max_payload_depth) + 1)) {
    // Left unallocated: the first parse allocates, and reports MEMALLOC if it cannot.
  }
}

bool NativeExtractor::Extract(char* data, size_t len, size_t capacity,
                              const RoutingKeyPointers& pointers,
                              const std::function<void(size_t, const EventView&)>& item,
                              const std::function<void(size_t, const ParseOutcome&)>& error) {
  if (len > limits_.max_event_bytes) {
    error(1, Failure(RejectReason::kOversize));
    return false;
  }
  // The whole body is validated first: items are forwarded verbatim.
  if (auto e = validator_.parse(reinterpret_cast<const uint8_t*>(data), len, false).error()) {
    error(1, Failure(ReasonFor(e), e, 0));
    return false;
  }
  ondemand::document doc;
  ondemand::object root;
  if (auto e = body_parser_.iterate(data, len, capacity).get(doc);
      e || doc.get_object().get(root)) {
    error(1, Failure(RejectReason::kNotAnObject, simdjson::INCORRECT_TYPE, 0));
    return false;
  }
  std::vector<std::string_view> items;
  ondemand::array results;
  if (root.find_field("results").get_array().get(results) == simdjson::SUCCESS) {
    for (auto element : results) {
      ondemand::value v;
      std::string_view raw;
      ondemand::object o;
      if (element.get(v) || v.get_object().get(o) || o.raw_json().get(raw)) {
        items.emplace_back();  // reported below as a malformed item
        continue;
      }
      items.push_back(TrimRight(raw));
    }
  } else {
    items.emplace_back(data, len);
  }
  // Keys without escapes are sliced from the input; decoded ones are kept in `decoded`, since
  // the next pointer lookup reuses the parser's string buffer.
  std::string decoded[4];
  auto read_key = [&](ondemand::document& item_doc, const std::vector<std::string>& ptrs,
                      std::string* storage, std::string_view* out) -> bool {
    for (const auto& p : ptrs) {
      item_doc.rewind();
      ondemand::value v;
      if (item_doc.at_pointer(p).get(v) != simdjson::SUCCESS) continue;
      const std::string_view raw = v.raw_json_token();
      if (raw.empty() || raw[0] != '"') continue;
      const size_t close = raw.find('"', 1);
      if (close != std::string_view::npos &&
          raw.substr(1, close - 1).find('\\') == std::string_view::npos) {
        *out = raw.substr(1, close - 1);
      } else {
        std::string_view s;
        if (v.get_string().get(s) != simdjson::SUCCESS) continue;
        *storage = std::string(s);
        *out = *storage;
      }
      return out->size() <= kMaxKeyBytes;
    }
    return true;
  };
  for (size_t i = 0; i < items.size(); ++i) {
    const size_t index = i + 1;
    if (items[i].empty()) {
      error(index, Failure(RejectReason::kWrongType, simdjson::INCORRECT_TYPE, 0, "results"));
      continue;
    }
    char* begin = const_cast<char*>(items[i].data());
    const size_t offset = static_cast<size_t>(begin - data);
    ondemand::document item_doc;
    if (auto e = item_parser_.iterate(begin, items[i].size(), capacity - offset).get(item_doc)) {
      error(index, Failure(ReasonFor(e), e, offset));
      continue;
    }
    EventView view;
    view.payload = items[i];
    if (!read_key(item_doc, pointers.application_id, &decoded[0], &view.application_id) ||
        !read_key(item_doc, pointers.entity_id, &decoded[1], &view.entity_id) ||
        !read_key(item_doc, pointers.resource, &decoded[2], &view.resource) ||
        !read_key(item_doc, pointers.user, &decoded[3], &view.user)) {
      error(index, Failure(RejectReason::kKeyTooLong, simdjson::SUCCESS, offset, "routing key"));
      continue;
    }
    item(index, view);
  }
  return true;
}

}  // namespace herald::parse
