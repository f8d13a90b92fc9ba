#include "engine/deliver/delivery_ring.h"

#include <algorithm>
#include <cctype>

#include "engine/common/strings.h"

namespace herald::deliver {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// `list` is comma-separated; whether one of its values is `value`.
bool Lists(std::string_view list, std::string_view value) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    if (list.substr(0, comma) == value) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

bool Wanted(const DeliveryAttempt& a, const DeliveryQuery& q) {
  if (a.id <= q.after) return false;
  if (!q.profile_id.empty() && a.profile_id != q.profile_id) return false;
  if (!q.status.empty()) {
    const int cls = a.status / 100;
    if (q.status == "error" ? a.status != 0 : q.status != Cat(cls, "xx")) return false;
  }
  if (!q.event.empty()) {
    const std::string_view want = q.event;
    const size_t colon = want.find(':');
    if (colon == std::string_view::npos
            ? !Lists(a.event, want)
            : !Lists(a.channel, want.substr(0, colon)) || !Lists(a.event, want.substr(colon + 1))) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool IsCredentialHeader(std::string_view name) {
  const std::string n = Lower(name);
  if (n == "authorization" || n == "proxy-authorization" || n == "cookie" || n == "set-cookie") {
    return true;
  }
  for (const char* word : {"key", "token", "secret", "password", "signature", "auth"}) {
    if (n.find(word) != std::string::npos) return true;
  }
  return false;
}

std::string RedactUrl(std::string_view url) {
  std::string out;
  const size_t scheme = url.find("://");
  size_t host = scheme == std::string_view::npos ? 0 : scheme + 3;
  out.append(url.substr(0, host));
  std::string_view rest = url.substr(host);
  const size_t path = rest.find_first_of("/?#");
  const size_t at = rest.substr(0, path).rfind('@');
  if (at != std::string_view::npos) rest.remove_prefix(at + 1);  // userinfo
  const size_t query = rest.find('?');
  if (query == std::string_view::npos) {
    out.append(rest);
    return out;
  }
  out.append(rest.substr(0, query + 1));
  std::string_view q = rest.substr(query + 1);
  const size_t fragment = q.find('#');
  q = q.substr(0, fragment);
  bool first = true;
  while (!q.empty()) {
    const size_t amp = q.find('&');
    const std::string_view pair = q.substr(0, amp);
    if (!first) out.push_back('&');
    first = false;
    const size_t eq = pair.find('=');
    out.append(pair.substr(0, eq));
    if (eq != std::string_view::npos) out.append("=[redacted]");
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return out;
}

std::string Excerpt(std::string_view body, size_t max) { return std::string(body.substr(0, max)); }

void DeliveryRing::Add(DeliveryAttempt attempt, std::string_view body) {
  if (entries_ == 0) return;
  const bool keep = body.size() <= max_body_ && body.size() <= body_budget_;
  auto kept = keep ? std::make_shared<const std::string>(body) : nullptr;
  MutexLock lock(mu_);
  attempt.id = next_id_++;
  attempt.resendable = keep;
  if (ring_.size() == entries_) {
    if (ring_.front().body) body_bytes_ -= ring_.front().body->size();
    ring_.pop_front();
    if (oldest_body_ > 0) --oldest_body_;
  }
  if (kept) body_bytes_ += kept->size();
  ring_.push_back({std::move(attempt), std::move(kept)});
  // Over the budget: the oldest bodies go; their attempts stay listed, no longer resendable.
  while (body_bytes_ > body_budget_ && oldest_body_ < ring_.size()) {
    Entry& e = ring_[oldest_body_++];
    if (!e.body) continue;
    body_bytes_ -= e.body->size();
    e.body.reset();
    e.attempt.resendable = false;
  }
}

std::vector<DeliveryAttempt> DeliveryRing::Query(const DeliveryQuery& query,
                                                 uint64_t* last_id) const {
  std::vector<DeliveryAttempt> out;
  MutexLock lock(mu_);
  if (last_id) *last_id = next_id_ - 1;
  for (auto it = ring_.rbegin(); it != ring_.rend() && out.size() < query.limit; ++it) {
    if (it->attempt.id <= query.after) break;
    if (Wanted(it->attempt, query)) out.push_back(it->attempt);
  }
  return out;
}

absl::StatusOr<std::pair<DeliveryAttempt, std::shared_ptr<const std::string>>> DeliveryRing::Get(
    uint64_t id) const {
  MutexLock lock(mu_);
  if (ring_.empty() || id < ring_.front().attempt.id || id > ring_.back().attempt.id) {
    return absl::NotFoundError(Cat("delivery ", id, " is not among the latest ", entries_));
  }
  const Entry& e = ring_[id - ring_.front().attempt.id];
  if (!e.body) {
    return absl::FailedPreconditionError(
        Cat("delivery ", id, "'s request body is no longer kept; it cannot be resent"));
  }
  return std::make_pair(e.attempt, e.body);
}

uint64_t DeliveryRing::last_id() const {
  MutexLock lock(mu_);
  return next_id_ - 1;
}

}  // namespace herald::deliver
