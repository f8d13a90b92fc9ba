// The spool's retention caps (DESIGN §7): past [spool] retain_max_mb or retain_max_hours, the
// profiles that hold back the oldest segment get its records as dead letters (reason
// "retention"), and the segment goes. Part of DeliveryLog, in a file of its own.
#include <algorithm>
#include <filesystem>

#include "absl/container/flat_hash_map.h"
#include "engine/common/strings.h"
#include "engine/store/delivery_log.h"

namespace herald::store {

void DeliveryLog::EnforceRetention() {
  if (!options_.bury || !replayed_all_) return;
  for (;;) {
    const auto segments = spool_->SegmentList();
    if (segments.size() < 2) return;  // never the segment being written
    uint64_t total = 0;
    for (const auto& segment : segments) total += segment.bytes;
    const Spool::SegmentInfo& oldest = segments.front();
    const bool too_big = total > options_.retain_max_bytes;
    const bool too_old =
        std::filesystem::file_time_type::clock::now() - oldest.modified > options_.retain_max_age;
    if (!too_big && !too_old) return;
    const uint64_t end = oldest.end_seq;
    // What each profile still owes of the segment: its unsettled records (every record from
    // its oldest on when there were too many to list) and those waiting for room in its queue.
    struct Owed {
      std::vector<uint64_t> seqs;
      absl::flat_hash_map<uint64_t, uint32_t> first_event;
    };
    absl::flat_hash_map<std::string, Owed> owed;
    for (auto& p : engine_.DeliveryProgress(options_.max_listed_unsettled)) {
      if (p.oldest_unsettled >= end) continue;
      Owed& o = owed[p.profile_id];
      if (p.listed_all) {
        for (uint64_t seq : p.unsettled) {
          if (seq < end) o.seqs.push_back(seq);
        }
      } else {
        for (uint64_t seq = std::max(p.oldest_unsettled, oldest.first_seq); seq < end; ++seq) {
          o.seqs.push_back(seq);
        }
      }
    }
    {
      MutexLock lock(stranded_mu_);
      for (const auto& [id, records] : stranded_) {
        for (const Stranded& r : records) {
          if (r.seq >= end) break;
          owed[id].seqs.push_back(r.seq);
          owed[id].first_event[r.seq] = r.first_event;
        }
      }
    }
    for (auto& [id, o] : owed) std::sort(o.seqs.begin(), o.seqs.end());
    uint64_t buried = 0;
    absl::Status failed;
    std::vector<Notification> notes;
    (void)spool_->Read(oldest.first_seq, [&](uint64_t seq, std::string_view record) {
      if (seq >= end) return false;
      for (auto& [id, o] : owed) {
        if (!std::binary_search(o.seqs.begin(), o.seqs.end(), seq)) continue;
        notes.clear();
        const auto first = o.first_event.find(seq);
        Route(seq, record, nullptr, id, first == o.first_event.end() ? 0 : first->second, &notes);
        if (auto s = options_.bury(id, notes, "retention"); !s.ok()) {
          failed = s;
          return false;
        }
        buried += notes.size();
      }
      return true;
    });
    if (!failed.ok()) {
      if (options_.log) {
        options_.log(Cat("spool: over a retention cap, but storing the dead letters failed: ",
                         ToStd(failed.message()), "; the segment stays"));
      }
      return;
    }
    {
      MutexLock lock(stranded_mu_);
      for (auto& [id, records] : stranded_) {
        const auto keep = std::find_if(records.begin(), records.end(),
                                       [&](const Stranded& r) { return r.seq >= end; });
        stranded_count_.fetch_sub(static_cast<uint64_t>(keep - records.begin()),
                                  std::memory_order_relaxed);
        records.erase(records.begin(), keep);
      }
      absl::erase_if(stranded_, [](const auto& entry) { return entry.second.empty(); });
      RefreshWaiting();
    }
    std::string profiles;
    for (const auto& [id, o] : owed) {
      (void)engine_.ForgetProgress(id, end);
      profiles += Cat(profiles.empty() ? "" : ", ", id);
    }
    retention_segments_.fetch_add(1, std::memory_order_relaxed);
    retention_dead_letters_.fetch_add(buried, std::memory_order_relaxed);
    if (options_.log) {
      options_.log(Cat("spool: over ", too_big ? "retain_max_mb" : "retain_max_hours", ": records ",
                       oldest.first_seq, " to ", end - 1, " dropped; ", buried,
                       " notification(s) kept as dead letters (reason retention) for ",
                       profiles.empty() ? "no profile" : profiles));
    }
    if (auto s = Checkpoint(); !s.ok()) {
      if (options_.log) options_.log(Cat("spool: writing delivery cursors: ", ToStd(s.message())));
      return;
    }
    const auto left = spool_->SegmentList();
    if (left.empty() || left.front().first_seq == oldest.first_seq) return;  // still held
  }
}

}  // namespace herald::store
