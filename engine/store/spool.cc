#include "engine/store/spool.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/common/framed_records.h"
#include "engine/common/strings.h"

namespace herald::store {
namespace {

constexpr size_t kHeader = 16;             // length, CRC, sequence
constexpr uint32_t kMaxRecord = 1u << 30;  // a larger length field is corruption

uint32_t RecordCrc(uint64_t seq, std::string_view payload) {
  uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(&seq), sizeof seq);
  return static_cast<uint32_t>(crc32(crc, reinterpret_cast<const Bytef*>(payload.data()),
                                     static_cast<uInt>(payload.size())));
}

// Frames one record whose payload is `parts` concatenated.
void AppendRecord(std::string& out, uint64_t seq, std::span<const std::string_view> parts) {
  size_t size = 0;
  for (auto part : parts) size += part.size();
  const uint32_t len = static_cast<uint32_t>(size);
  const size_t start = out.size();
  out.resize(start + kHeader);
  for (auto part : parts) out.append(part);
  const uint32_t crc = RecordCrc(seq, std::string_view(out).substr(start + kHeader));
  std::memcpy(out.data() + start, &len, 4);
  std::memcpy(out.data() + start + 4, &crc, 4);
  std::memcpy(out.data() + start + 8, &seq, 8);
}

std::string SegmentName(uint64_t first_seq) {
  char name[32];
  std::snprintf(name, sizeof name, "%020llu.seg", static_cast<unsigned long long>(first_seq));
  return name;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::UnavailableError(Cat("cannot read ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Walks the records of one segment from its start: fn(seq, payload) for each good one, in order;
// returns the length of the good prefix. Stops at the first record that is short, fails its CRC
// or breaks the sequence.
size_t ScanSegment(std::string_view data, uint64_t first_seq,
                   const std::function<bool(uint64_t, std::string_view)>& fn) {
  size_t pos = 0;
  uint64_t expected = first_seq;
  while (data.size() - pos >= kHeader) {
    uint32_t len, crc;
    uint64_t seq;
    std::memcpy(&len, data.data() + pos, 4);
    std::memcpy(&crc, data.data() + pos + 4, 4);
    std::memcpy(&seq, data.data() + pos + 8, 8);
    if (len > kMaxRecord || data.size() - pos - kHeader < len || seq != expected) break;
    const std::string_view payload = data.substr(pos + kHeader, len);
    if (RecordCrc(seq, payload) != crc) break;
    pos += kHeader + len;
    ++expected;
    if (!fn(seq, payload)) break;
  }
  return pos;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Spool>> Spool::Open(Options options) {
  std::unique_ptr<Spool> spool(new Spool(std::move(options)));
  {
    MutexLock lock(spool->mu_);
    if (auto s = spool->Recover(); !s.ok()) return s;
  }
  if (spool->options_.durability != Durability::kNone) {
    spool->flusher_ = std::thread([s = spool.get()] { s->Flusher(); });
  }
  return spool;
}

Spool::~Spool() {
  {
    MutexLock lock(flusher_mu_);
    stop_ = true;
  }
  flusher_cv_.NotifyAll();
  if (flusher_.joinable()) flusher_.join();
  Flush();
  MutexLock lock(mu_);
  if (options_.durability != Durability::kNone && file_.is_open()) (void)file_.Sync();
}

absl::Status Spool::Recover() {
  const std::string& dir = options_.dir;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::UnavailableError(Cat("spool ", dir, ": ", ec.message()));
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!name.ends_with(".seg")) continue;
    uint64_t first = 0;
    const auto [end, err] = std::from_chars(name.data(), name.data() + name.size() - 4, first);
    if (name.size() != 24 || err != std::errc() || end != name.data() + 20 || first == 0) {
      // Not one of ours (a copy, an editor's backup): never a reason not to start.
      if (options_.log)
        options_.log(Cat("spool: ignoring ", entry.path().string(),
                         ": not a segment name (20 digits, .seg)"));
      continue;
    }
    segments_[first] = entry.path().string();
  }
  if (ec) return absl::UnavailableError(Cat("spool ", dir, ": ", ec.message()));
  uint64_t next = segments_.empty() ? 1 : segments_.begin()->first;
  for (auto it = segments_.begin(); it != segments_.end(); ++it) {
    const bool last = std::next(it) == segments_.end();
    auto data = ReadFile(it->second);
    if (!data.ok()) return data.status();
    if (it->first != next) {
      return absl::DataLossError(Cat("spool: ", it->second, " starts at record ", it->first,
                                     " but ", next, " was expected: a segment is missing"));
    }
    uint64_t count = 0;
    const size_t good = ScanSegment(*data, it->first, [&](uint64_t, std::string_view) {
      ++count;
      return true;
    });
    next = it->first + count;
    if (good == data->size()) continue;
    if (!last) {
      return absl::DataLossError(Cat("spool: ", it->second, " is corrupt at byte ", good,
                                     " and later segments follow it; refusing to skip records"));
    }
    recovery_.truncated_bytes = data->size() - good;
    if (options_.log) {
      options_.log(Cat("spool: ", it->second, ": a torn or corrupt tail at byte ", good,
                       " (after record ", next, "): cutting ", recovery_.truncated_bytes,
                       " byte(s); the records before it are kept"));
    }
    if (::truncate(it->second.c_str(), static_cast<off_t>(good)) != 0) {
      return ErrnoError("truncate", it->second);
    }
  }
  next_seq_ = next;
  written_seq_ = next;
  synced_seq_ = next;
  recovery_.first_seq = segments_.empty() ? next : segments_.begin()->first;
  recovery_.next_seq = next;
  recovery_.segments = segments_.size();
  if (segments_.empty()) return OpenSegment(next);
  auto file = AppendFile::Open(segments_.rbegin()->second, /*truncate=*/false, options_.sync);
  if (!file.ok()) return file.status();
  file_ = *std::move(file);
  return absl::OkStatus();
}

absl::Status Spool::OpenSegment(uint64_t first_seq) {
  const std::string path = options_.dir + "/" + SegmentName(first_seq);
  auto file = AppendFile::Open(path, /*truncate=*/false, options_.sync);
  if (!file.ok()) return file.status();
  if (auto s = SyncDir(options_.dir); !s.ok()) return s;
  file_ = *std::move(file);  // the segment before closes
  segments_[first_seq] = path;
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Spool::Append(std::span<const std::string_view> records) {
  return Write(records.size(), [&](std::string& frames, uint64_t first) {
    for (size_t i = 0; i < records.size(); ++i) {
      AppendRecord(frames, first + i, std::span<const std::string_view>(&records[i], 1));
    }
  });
}

absl::StatusOr<uint64_t> Spool::AppendParts(std::span<const std::string_view> parts) {
  return Write(1, [&](std::string& frames, uint64_t first) { AppendRecord(frames, first, parts); });
}

absl::StatusOr<uint64_t> Spool::AppendParts(std::span<const std::string_view> parts,
                                            std::function<void(absl::Status)> on_durable) {
  if (options_.durability != Durability::kAlways) {
    auto seq = AppendParts(parts);
    if (seq.ok()) on_durable(absl::OkStatus());
    return seq;
  }
  uint64_t seq;
  {
    MutexLock lock(mu_);  // written and registered in sequence order
    auto first =
        WriteLocked(1, [&](std::string& frames, uint64_t f) { AppendRecord(frames, f, parts); });
    if (!first.ok()) return first;
    seq = *first;
  }
  {
    MutexLock lock(flusher_mu_);
    waiters_.push_back(std::move(on_durable));
  }
  flusher_cv_.NotifyOne();
  return seq;
}

void Spool::SyncWaiters() {
  if (waiters_.empty()) return;
  auto waiting = std::exchange(waiters_, {});
  ++syncing_waiters_;
  flusher_mu_.unlock();
  // Every waiter's record was written before it registered, so this covers them all.
  const absl::Status s = SyncUpTo(written_seq_.load(std::memory_order_acquire));
  for (auto& fn : waiting) fn(s);
  flusher_mu_.lock();
  if (--syncing_waiters_ == 0) waiters_done_cv_.NotifyAll();
}

void Spool::Flush() {
  {
    MutexLock lock(flusher_mu_);
    SyncWaiters();
    while (syncing_waiters_ != 0) waiters_done_cv_.Wait(flusher_mu_);  // the flusher's too
  }
  if (options_.durability != Durability::kNone) {
    (void)SyncUpTo(written_seq_.load(std::memory_order_acquire));
  }
}

absl::StatusOr<uint64_t> Spool::Write(size_t count,
                                      const std::function<void(std::string&, uint64_t)>& frame) {
  uint64_t end;
  absl::StatusOr<uint64_t> first;
  {
    MutexLock lock(mu_);
    first = WriteLocked(count, frame);
    if (!first.ok()) return first;
    end = *first + count;
  }
  if (options_.durability == Durability::kAlways) {
    if (auto s = SyncUpTo(end); !s.ok()) return s;
  }
  return first;
}

absl::StatusOr<uint64_t> Spool::WriteLocked(
    size_t count, const std::function<void(std::string&, uint64_t)>& frame) {
  uint64_t first;
  {
    if (sync_failed_.load(std::memory_order_relaxed)) return SyncFailed();
    // Reused, so steady-state appends allocate nothing; a huge request's buffer is not kept.
    if (frames_.capacity() > (4u << 20)) frames_ = std::string();
    std::string& frames = frames_;
    frames.clear();
    frame(frames, next_seq_);
    if (file_.size() > 0 && file_.size() + frames.size() > options_.segment_bytes) {
      // The old segment is complete: make it durable before the new one takes appends.
      if (options_.durability != Durability::kNone) {
        if (auto s = file_.Sync(); !s.ok()) {
          sync_failed_ = true;
          return s;
        }
      }
      if (auto s = OpenSegment(next_seq_); !s.ok()) return s;
    }
    // A failed write is taken back, so the records after it are not lost behind a torn one; one
    // that cannot be taken back leaves the file refusing appends.
    if (auto s = file_.Append(frames, /*sync=*/false); !s.ok()) return s;
    first = next_seq_;
    next_seq_ += count;
    written_seq_.store(next_seq_, std::memory_order_release);
  }
  return first;
}

absl::Status Spool::SyncFailed() const {
  // Linux reports a failed writeback once: a later fdatasync could succeed over lost pages.
  return absl::UnavailableError(
      Cat("spool ", options_.dir, ": an fdatasync failed; restart heraldd"));
}

absl::Status Spool::SyncUpTo(uint64_t seq) {
  MutexLock sync(sync_mu_);
  if (synced_seq_.load(std::memory_order_acquire) >= seq) return absl::OkStatus();  // grouped
  // A record written before an fdatasync failed may be among the lost pages: a later
  // fdatasync that succeeds proves nothing, so every waiter of it gets the failure.
  if (sync_failed_.load(std::memory_order_acquire)) return SyncFailed();
  int fd;
  uint64_t upto;
  std::string path;
  {
    MutexLock lock(mu_);
    fd = file_.DupForSync();  // a roll may close the segment meanwhile; it synced it first
    upto = written_seq_.load(std::memory_order_acquire);
    path = segments_.rbegin()->second;
  }
  if (fd < 0) return ErrnoError("dup", path);
  const int rc = options_.sync(fd);
  absl::Status error = rc != 0 ? ErrnoError("fdatasync", path) : absl::OkStatus();
  ::close(fd);
  syncs_.fetch_add(1, std::memory_order_relaxed);
  if (rc != 0) {
    MutexLock lock(mu_);
    sync_failed_ = true;
    file_.SyncFailed(error);  // and the file refuses appends too
    return error;
  }
  // A roll's fdatasync of the same file may have taken the error report (Linux gives it once per
  // file): it fails the spool under mu_, so look again under mu_ before calling these durable.
  MutexLock lock(mu_);
  if (sync_failed_.load(std::memory_order_relaxed)) return SyncFailed();
  synced_seq_.store(upto, std::memory_order_release);
  return absl::OkStatus();
}

void Spool::Flusher() {
  MutexLock lock(flusher_mu_);
  if (options_.durability == Durability::kAlways) {
    // Group commit for AppendParts' waiters: one fdatasync for all that arrived meanwhile.
    while (!stop_) {
      while (!stop_ && waiters_.empty()) flusher_cv_.Wait(flusher_mu_);
      SyncWaiters();
    }
    return;
  }
  bool logged_failure = false;
  while (!stop_) {
    const auto deadline = std::chrono::steady_clock::now() + options_.batch_interval;
    while (!stop_ && flusher_cv_.WaitUntil(flusher_mu_, deadline)) {
    }
    const uint64_t written = written_seq_.load(std::memory_order_acquire);
    if (written > synced_seq_.load(std::memory_order_acquire)) {
      if (auto s = SyncUpTo(written); !s.ok() && options_.log && !logged_failure) {
        logged_failure = true;  // once: every later round fails the same way
        options_.log(Cat("spool: ", ToStd(s.message()),
                         "; refusing events until heraldd restarts (what was written since the "
                         "last good fdatasync may not be on disk; the restart replays what is)"));
      }
    }
  }
}

absl::Status Spool::Read(uint64_t from,
                         const std::function<bool(uint64_t, std::string_view)>& fn) const {
  std::map<uint64_t, std::string> segments;
  {
    MutexLock lock(mu_);
    segments = segments_;
  }
  for (auto it = segments.begin(); it != segments.end(); ++it) {
    const auto next = std::next(it);
    if (next != segments.end() && next->first <= from) continue;  // entirely before `from`
    auto data = ReadFile(it->second);
    if (!data.ok()) return data.status();
    bool more = true;
    ScanSegment(*data, it->first, [&](uint64_t seq, std::string_view payload) {
      if (seq >= from) more = fn(seq, payload);
      return more;
    });
    if (!more) break;
  }
  return absl::OkStatus();
}

absl::Status Spool::Retain(uint64_t before) {
  MutexLock lock(mu_);
  bool removed = false;
  while (segments_.size() > 1 && std::next(segments_.begin())->first <= before) {
    const std::string path = segments_.begin()->second;
    if (::unlink(path.c_str()) != 0) return ErrnoError("unlink", path);
    segments_.erase(segments_.begin());
    removed = true;
  }
  return removed ? SyncDir(options_.dir) : absl::OkStatus();
}

std::vector<Spool::SegmentInfo> Spool::SegmentList() const {
  MutexLock lock(mu_);
  std::vector<SegmentInfo> out;
  for (auto it = segments_.begin(); it != segments_.end(); ++it) {
    SegmentInfo info{
        .first_seq = it->first,
        .end_seq = std::next(it) == segments_.end() ? next_seq_ : std::next(it)->first};
    std::error_code ec;
    info.bytes = std::filesystem::file_size(it->second, ec);
    info.modified = std::filesystem::last_write_time(it->second, ec);
    out.push_back(info);
  }
  return out;
}

uint64_t Spool::next_seq() const {
  MutexLock lock(mu_);
  return next_seq_;
}

uint64_t Spool::durable_seq() const {
  if (options_.durability == Durability::kNone) return next_seq();
  return synced_seq_.load(std::memory_order_acquire);
}

uint64_t Spool::first_seq() const {
  MutexLock lock(mu_);
  return segments_.empty() ? next_seq_ : segments_.begin()->first;
}

size_t Spool::segments() const {
  MutexLock lock(mu_);
  return segments_.size();
}

}  // namespace herald::store
