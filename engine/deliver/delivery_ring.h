// The latest webhook requests, for the operations API (GET /v1/deliveries): a bounded ring of
// DeliveryAttempt records with excerpts of each request and response, credentials redacted
// before they are stored. It keeps each request's whole body too, up to a byte budget shared by
// the ring (the oldest bodies go first), so that an attempt can be resent.
//
// Workers add (one short lock per request); any thread queries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/common/mutex.h"
#include "herald/webhook_deliverer.h"

namespace herald::deliver {

inline constexpr size_t kRequestExcerptBytes = 2048;
inline constexpr size_t kResponseExcerptBytes = 1024;

// Whether a header's value is a credential: shown as "[redacted]". Authorization and cookies, and
// any name that speaks of a key, token, secret, password or signature.
bool IsCredentialHeader(std::string_view name);
// The URL without its userinfo and with every query value redacted.
std::string RedactUrl(std::string_view url);
// The first `max` bytes of `body`.
std::string Excerpt(std::string_view body, size_t max);

class DeliveryRing {
 public:
  // `entries`: attempts kept (0 keeps none); `body_budget`: bytes of whole bodies kept for
  // resending, at most `max_body` each.
  DeliveryRing(size_t entries, size_t body_budget, size_t max_body = 1 << 20)
      : entries_(entries), body_budget_(body_budget), max_body_(max_body) {}

  bool enabled() const { return entries_ > 0; }
  // Assigns the attempt its id and stores it, with `body` for a resend when it fits.
  void Add(DeliveryAttempt attempt, std::string_view body);
  // Newest first, at most query.limit, with ids above query.after; `last_id` (when given) gets
  // the latest id, under the same lock.
  std::vector<DeliveryAttempt> Query(const DeliveryQuery& query, uint64_t* last_id = nullptr) const;
  // The attempt with its whole body: NotFound once it left the ring, FailedPrecondition when its
  // body was not kept.
  absl::StatusOr<std::pair<DeliveryAttempt, std::shared_ptr<const std::string>>> Get(
      uint64_t id) const;
  uint64_t last_id() const;

 private:
  struct Entry {
    DeliveryAttempt attempt;
    std::shared_ptr<const std::string> body;
  };
  const size_t entries_;
  const size_t body_budget_;
  const size_t max_body_;
  mutable Mutex mu_;
  std::deque<Entry> ring_ HERALD_GUARDED_BY(mu_);  // oldest first
  size_t body_bytes_ HERALD_GUARDED_BY(mu_) = 0;
  size_t oldest_body_ HERALD_GUARDED_BY(mu_) = 0;  // index in ring_ of the oldest kept body
  uint64_t next_id_ HERALD_GUARDED_BY(mu_) = 1;
};

}  // namespace herald::deliver
