// What both dead-letter stores pick from their in-memory index: a map by id (oldest first) of
// entries that each hold their `letter` (a DeadLetter). Letters that failed before `oldest_kept`
// are past max_age: not listed, counted or replayed (the next write removes them). Called with
// the store's index lock held.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace herald::deliver {

// Page `page` of `size` of a profile's letters (every profile's when empty); `*total` counts them
// all.
template <typename Index>
std::vector<typename Index::mapped_type> PickPage(const Index& index, std::string_view profile_id,
                                                  size_t page, size_t size, int64_t oldest_kept,
                                                  size_t* total) {
  std::vector<typename Index::mapped_type> picked;
  const size_t first = page * size;
  *total = 0;
  for (const auto& [id, e] : index) {
    if (!profile_id.empty() && e.letter.profile_id != profile_id) continue;
    if (e.letter.failed_at_ms < oldest_kept) continue;
    if (*total >= first && picked.size() < size) picked.push_back(e);
    ++*total;
  }
  return picked;
}

// A profile's letters of `ids` (all when empty) not in `replaying` yet, each once, now in it.
template <typename Index>
std::vector<typename Index::mapped_type> PickReplay(const Index& index,
                                                    std::set<uint64_t>& replaying,
                                                    std::string_view profile_id,
                                                    const std::vector<uint64_t>& ids,
                                                    int64_t oldest_kept) {
  std::vector<typename Index::mapped_type> picked;
  auto take = [&](const typename Index::mapped_type& e) {
    if (e.letter.profile_id == profile_id && e.letter.failed_at_ms >= oldest_kept &&
        replaying.insert(e.letter.id).second) {
      picked.push_back(e);
    }
  };
  if (ids.empty()) {
    for (const auto& [id, e] : index) take(e);
  } else {
    // Each once, however often it is named.
    for (const uint64_t id : std::set<uint64_t>(ids.begin(), ids.end())) {
      if (auto it = index.find(id); it != index.end()) take(it->second);
    }
  }
  return picked;
}

// The ids of a profile's letters of `ids` (all when empty), each once.
template <typename Index>
std::vector<uint64_t> PickDeletes(const Index& index, std::string_view profile_id,
                                  const std::vector<uint64_t>& ids) {
  std::vector<uint64_t> gone;
  if (ids.empty()) {
    for (const auto& [id, e] : index) {
      if (e.letter.profile_id == profile_id) gone.push_back(id);
    }
    return gone;
  }
  for (const uint64_t id : std::set<uint64_t>(ids.begin(), ids.end())) {
    auto it = index.find(id);
    if (it != index.end() && it->second.letter.profile_id == profile_id) gone.push_back(id);
  }
  return gone;
}

template <typename Index>
std::map<std::string, uint64_t> CountPerProfile(const Index& index, int64_t oldest_kept) {
  std::map<std::string, uint64_t> out;
  for (const auto& [id, e] : index) {
    if (e.letter.failed_at_ms >= oldest_kept) ++out[e.letter.profile_id];
  }
  return out;
}

}  // namespace herald::deliver
