// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/detail/input_queue.hpp>
#include <tactus/midi/input_options.hpp>
#include <tactus/midi/message.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <utility>

// The realtime half of midi::input: what RtMidi's callback thread does with a message, and how
// the executor takes it over, on the core's hand-off queue (input_queue.hpp, on
// tactus/detail/handoff_queue.hpp, which tactus::thread_channel shares). The producer (RtMidi's
// thread: for JACK, its process thread) copies the message into the bounded queue, counts it, and
// learns whether the executor needs a wake-up (one per burst, not per message); it never blocks,
// never locks, and allocates only to grow a sysex slot. The sysex queued at once are bounded in
// total (the budget): one that does not fit is dropped and counted as an overflow (the queue is
// full of sysex rather than of messages: the same cause, a consumer behind), and the buffers the
// slots keep are freed by the consumer when they hold more than the budget, so the memory held
// for sysex stays under about twice the budget (plus one maximal sysex), whatever the traffic.
// Every message it drops is counted: the
// executor takes the counts as overflow news (take_overflow) and reports them. The queue's gate
// lets close() wait until no callback runs. No Asio here: the input (detail/input_impl.hpp) wakes
// its executor.

namespace tactus::midi::detail {

class input_handoff {
 public:
  /// What the producer's caller must do after a push: nothing (the executor is awake already),
  /// wake the consumer, or have the overflow reported.
  enum class wake { none, deliver, report_overflow };

  /// Dropped messages not yet reported, by cause.
  struct overflow {
    std::uint64_t too_long = 0;     ///< sysex over the size limit
    std::uint64_t full = 0;         ///< the queue was full
    std::uint64_t over_budget = 0;  ///< sysex that did not fit the budget of queued sysex bytes
    std::uint64_t total = 0;        ///< every message dropped so far, for any cause
  };

  /// The default of input_options::max_queued_sysex_bytes.
  static constexpr std::size_t default_sysex_budget = std::size_t(1) << 20;

  /// `sysex_budget`: the most bytes of sysex queued at once; raised to `max_sysex_bytes` if below
  /// (one maximal sysex always fits an empty queue).
  input_handoff(std::size_t capacity, std::size_t max_sysex_bytes, std::size_t sysex_budget = default_sysex_budget)
      : queue_(capacity == 0 ? 1 : capacity, tactus::detail::when_full::drop_newest),
        max_sysex_(max_sysex_bytes),
        budget_(std::max(sysex_budget, max_sysex_bytes)) {}

  std::size_t capacity() const noexcept { return queue_.capacity(); }
  /// The budget of queued sysex bytes in force.
  std::size_t sysex_budget() const noexcept { return budget_; }
  /// The bytes of sysex queued now, and the capacity the slots' sysex buffers hold (any thread;
  /// a snapshot).
  std::size_t sysex_queued() const noexcept { return queued_sysex_.load(std::memory_order_relaxed); }
  std::size_t sysex_held() const noexcept { return held_.load(std::memory_order_relaxed); }

  // --- the producer (RtMidi's thread, one at a time) ------------------------------------------

  /// Hands `bytes`, stamped `now` (and RtMidi's `delta` in seconds), to the queue, then calls
  /// `wake(w)` when the consumer needs it. Does nothing once shut() began. `wake` runs inside the
  /// gate, so whatever it touches outlives it (shut() waits). Lock-free.
  template <class Wake>
  void produce(std::chrono::steady_clock::time_point now, double delta, std::span<const std::uint8_t> bytes,
               Wake&& wake, std::int64_t frame = -1) noexcept {
    if (bytes.empty()) return;
    queue_.produce([&]() noexcept {
      if (!input_slot::fits(bytes.size(), max_sysex_)) {
        // relaxed: published by refuse()'s release of the arrival count.
        too_long_.fetch_add(1, std::memory_order_relaxed);
        if (queue_.refuse()) wake(wake::report_overflow);
        return;
      }
      const bool sysex = input_slot::is_long(bytes.size());
      if (sysex && !reserve(bytes.size())) {
        over_budget_.fetch_add(1, std::memory_order_relaxed);  // relaxed: as too_long_
        if (queue_.refuse()) wake(wake::report_overflow);
        return;
      }
      const auto r = queue_.push(
          [&](input_slot& s) noexcept {
            // relaxed: a count of bytes, read as a snapshot; nothing else rides on it.
            if (const auto grew = s.store(bytes, now, delta, frame)) held_.fetch_add(grew, std::memory_order_relaxed);
          },
          [](input_slot&) noexcept {});  // drop_newest: never discards
      if (!r.queued && sysex) queued_sysex_.fetch_sub(bytes.size(), std::memory_order_relaxed);  // see reserve()
      if (r.queued ? r.wake : r.report_overflow) wake(r.queued ? wake::deliver : wake::report_overflow);
    });
  }

  // --- the consumer (the executor) ------------------------------------------------------------

  /// Closes the gate and waits (spinning with yield: a callback is microseconds) until no
  /// producer is inside produce(). Afterwards nothing is pushed any more.
  void shut() noexcept { queue_.shut(); }

  /// The consumer is about to wait: lets the next push wake it. Returns true when a message
  /// slipped in before (its push did not wake, the flag being still set): deliver it now.
  bool arm() noexcept { return queue_.arm(); }

  /// The oldest message, if any. Bytes that are not one message are counted as dropped and
  /// announced through `on_malformed()` (they are no overflow), then skipped; a sysex whose slot
  /// could not grow is counted as too long (and reported with the overflow).
  template <class OnMalformed>
  std::optional<timed_message> pop(OnMalformed&& on_malformed) {
    for (;;) {
      std::optional<timed_message> out;
      bool unstored = false;
      const bool took = queue_.pop([&](input_slot& s) {
        try {
          if (s.unstored) unstored = true;
          else if (auto m = s.to_message()) out.emplace(timed_message{std::move(*m), s.time, s.delta, s.frame});
        } catch (...) {  // bad_alloc copying a sysex out
          unstored = true;
        }
        if (s.sysex_bytes) {
          // relaxed: byte counts (see reserve()).
          queued_sysex_.fetch_sub(std::exchange(s.sysex_bytes, 0), std::memory_order_relaxed);
          // Over the budget: this buffer goes (freed here, on the executor, never in the
          // producer's realtime thread); under it, it stays for the next sysex of this slot.
          if (held_.load(std::memory_order_relaxed) > budget_) held_.fetch_sub(s.release(), std::memory_order_relaxed);
        }
      });
      if (!took) return std::nullopt;
      if (out) {
        ++received_;
        return out;
      }
      // relaxed: counts, read by dropped() and take_overflow(); no other data rides on them.
      if (unstored) {
        too_long_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      malformed_.fetch_add(1, std::memory_order_relaxed);
      on_malformed();
    }
  }

  /// The drops since the last call (zero counts when none). Lets the next drop wake again.
  overflow take_overflow() noexcept {
    // Clearing the flag first means a later drop wakes again; its acq_rel acquires the counts of
    // the drop that set it.
    queue_.take_overflow();
    // acquire: the counts of later drops, published by the arrival count's release after them.
    const auto full = queue_.overflowed();
    const auto too_long = too_long_.load(std::memory_order_acquire);
    const auto over_budget = over_budget_.load(std::memory_order_acquire);
    overflow o{too_long - reported_too_long_, full - reported_full_, over_budget - reported_over_budget_, dropped()};
    reported_full_ = full;
    reported_too_long_ = too_long;
    reported_over_budget_ = over_budget;
    return o;
  }

  // Counters. The queue's arrival count is incremented last in a push, with release, so whoever
  // reads it with acquire also sees that message's drop count or queue entry. Each cause of a
  // drop has its own counter, so no report needs two of them to agree.
  std::uint64_t arrived() const noexcept { return queue_.arrived(); }
  std::uint64_t dropped() const noexcept {
    // acquire: see arrived(). The sum may run ahead of an arrived() read before it, never behind.
    return queue_.overflowed() + too_long_.load(std::memory_order_acquire) +
           over_budget_.load(std::memory_order_acquire) + malformed_.load(std::memory_order_acquire);
  }
  /// Consumer only.
  std::uint64_t received() const noexcept { return received_; }
  /// Consumer only: true when nothing is ready to be taken (may turn false at any moment).
  bool empty() const noexcept { return !queue_.ready(); }

 private:
  // Takes `n` bytes of the budget of queued sysex, if they fit. The producers are one at a time
  // (RtMidi's thread), the consumer only gives back: a compare-exchange keeps it exact anyway.
  bool reserve(std::size_t n) noexcept {
    // relaxed: the count bounds memory, it publishes nothing (the queue's sequences do).
    auto cur = queued_sysex_.load(std::memory_order_relaxed);
    do {
      if (cur + n > budget_) return false;
    } while (!queued_sysex_.compare_exchange_weak(cur, cur + n, std::memory_order_relaxed));
    return true;
  }

  input_queue queue_;
  std::size_t max_sysex_;
  std::size_t budget_;
  std::atomic<std::size_t> queued_sysex_{0};   // bytes of the sysex in the queue (reserved to popped)
  std::atomic<std::size_t> held_{0};           // capacity of the slots' sysex buffers
  std::atomic<std::uint64_t> over_budget_{0};  // sysex refused: the budget was full
  // Dropped: a sysex over the limit (the producer), or one whose slot could not grow (the
  // consumer, when it takes it).
  std::atomic<std::uint64_t> too_long_{0};
  // Written by the consumer (and read by any thread through dropped()).
  std::atomic<std::uint64_t> malformed_{0};
  // Consumer only.
  std::uint64_t received_ = 0;
  std::uint64_t reported_full_ = 0;
  std::uint64_t reported_too_long_ = 0;
  std::uint64_t reported_over_budget_ = 0;
};

}  // namespace tactus::midi::detail
