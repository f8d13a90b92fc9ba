// A request's query string and the management API's paging (DESIGN §4).
#pragma once

#include <algorithm>
#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace herald::server {

// %XX decoded, '+' as a space; a malformed escape is kept as it is.
std::string PercentDecode(std::string_view s);

// name → value, decoded; a name may repeat ("id=3&id=4"), a name without '=' has value "".
using Query = std::multimap<std::string, std::string>;
Query ParseQuery(std::string_view query);
// Every value of `key`, in order.
std::vector<std::string> Values(const Query& query, std::string_view key);
// The first value of `key`, or "" without one.
std::string Value(const Query& query, std::string_view key);

struct Paging {
  size_t page = 0;   // from 0
  size_t size = 20;  // 1..100
};
// ?page= and ?size=; InvalidArgument with the field's error when either is not an integer in
// its range.
absl::StatusOr<Paging> ParsePaging(const Query& query);

// {"results":[…],"paging":{"page","size","totalPages","totalResults"}}: `results` are the page's
// items as JSON, `total` how many there are in all.
std::string PageBody(const std::vector<std::string>& results, Paging paging, size_t total);

// The page of `items` that `paging` asks for, each encoded to JSON by `encode`.
template <typename T, typename F>
std::string Page(const std::vector<T>& items, Paging paging, F&& encode) {
  const size_t begin = std::min(items.size(), paging.page * paging.size);
  const size_t end = std::min(items.size(), begin + paging.size);
  std::vector<std::string> results;
  results.reserve(end - begin);
  for (size_t i = begin; i < end; ++i) results.push_back(encode(items[i]));
  return PageBody(results, paging, items.size());
}

}  // namespace herald::server
