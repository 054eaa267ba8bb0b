// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/detail/input_queue.hpp>
#include <tactus/midi/input_options.hpp>
#include <tactus/midi/message.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <thread>

// The realtime half of midi::input: what RtMidi's callback thread does with a message, and how
// the executor takes it over. The producer (RtMidi's thread: for JACK, its process thread) copies
// the message into the bounded queue, counts it, and learns whether the executor needs a wake-up
// (one post per wake-up, not per message); it never blocks, never locks, and allocates only to
// grow a sysex slot. Every message it drops is counted: the executor takes the counts as overflow
// news (take_overflow) and reports them. A gate lets close() wait until no callback runs.
// No Asio here: the input (detail/input_impl.hpp) posts the wake-ups.

namespace tactus::midi::detail {

class input_handoff {
 public:
  /// What the producer's caller must do after a push: nothing (the executor is awake already),
  /// wake the consumer, or have the overflow reported.
  enum class wake { none, deliver, report_overflow };

  /// Dropped messages not yet reported, by cause.
  struct overflow {
    std::uint64_t too_long = 0;  ///< sysex over the size limit
    std::uint64_t full = 0;      ///< the queue was full
    std::uint64_t total = 0;     ///< every message dropped so far, for any cause
  };

  input_handoff(std::size_t capacity, std::size_t max_sysex_bytes) : queue_(capacity, max_sysex_bytes) {}

  std::size_t capacity() const noexcept { return queue_.capacity(); }

  // --- the producer (RtMidi's thread, one at a time) ------------------------------------------

  /// Hands `bytes`, stamped `now` (and RtMidi's `delta` in seconds), to the queue, then calls
  /// `wake(w)` when the consumer needs it. Does nothing once shut() began. `wake` runs inside the
  /// gate, so whatever it touches outlives it (shut() waits). Lock-free.
  template <class Wake>
  void produce(std::chrono::steady_clock::time_point now, double delta, std::span<const std::uint8_t> bytes,
               Wake&& wake) noexcept {
    // seq_cst on this increment and on closing_ (in shut()): either shut() sees the increment, or
    // we see closing_ (a store-load pair, which release/acquire does not order).
    in_callback_.fetch_add(1, std::memory_order_seq_cst);
    if (!closing_.load(std::memory_order_seq_cst) && !bytes.empty()) {
      if (const auto w = push(now, delta, bytes); w != wake::none) wake(w);
    }
    // release: our queue writes and wake-up happen before shut() sees the count fall to zero.
    in_callback_.fetch_sub(1, std::memory_order_release);
  }

  // --- the consumer (the executor) ------------------------------------------------------------

  /// Closes the gate and waits (spinning with yield: a callback is microseconds) until no
  /// producer is inside produce(). Afterwards nothing is pushed any more.
  void shut() noexcept {
    closing_.store(true, std::memory_order_seq_cst);  // seq_cst: see produce()
    // acquire: pairs with the producer's release decrement; its queue writes happened before.
    while (in_callback_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
  }

  /// The consumer is about to wait: lets the next push wake it. Returns true when a message
  /// slipped in before (its push did not wake, the flag being still set): deliver it now.
  bool arm() noexcept {
    // acq_rel: if a producer's exchange came first in the flag's order we acquire its push; if
    // ours came first the producer reads false and wakes us.
    signalled_.exchange(false, std::memory_order_acq_rel);
    return !queue_.empty();
  }

  /// The oldest message, if any. Bytes that are not one message are counted as dropped and
  /// announced through `on_malformed()` (they are no overflow), then skipped.
  template <class OnMalformed>
  std::optional<timed_message> pop(OnMalformed&& on_malformed) {
    for (;;) {
      auto p = queue_.try_pop();
      if (!p) return std::nullopt;
      if (p->msg) {
        ++received_;
        return timed_message{std::move(*p->msg), p->time, p->delta_seconds};
      }
      // relaxed: a count, written only here; readers of dropped() need no ordering with it.
      malformed_.fetch_add(1, std::memory_order_relaxed);
      on_malformed();
    }
  }

  /// The drops since the last call (zero counts when none). Lets the next drop wake again.
  overflow take_overflow() noexcept {
    // acq_rel: acquires the counts of the drop whose push set the flag; clearing it first means
    // a later drop wakes again.
    overflow_signalled_.exchange(false, std::memory_order_acq_rel);
    // acquire: the counts of later drops, published by arrived_'s release after them.
    const auto full = full_.load(std::memory_order_acquire);
    const auto too_long = too_long_.load(std::memory_order_acquire);
    overflow o{too_long - reported_too_long_, full - reported_full_, dropped()};
    reported_full_ = full;
    reported_too_long_ = too_long;
    return o;
  }

  // Counters. arrived_ is incremented last in push() with release, so whoever reads it with
  // acquire also sees that message's drop count or queue entry. Each cause of a drop has its own
  // counter (written by one thread), so no report needs two of them to agree.
  std::uint64_t arrived() const noexcept { return arrived_.load(std::memory_order_acquire); }
  std::uint64_t dropped() const noexcept {
    // acquire: see arrived(). The sum may run ahead of an arrived() read before it, never behind.
    return full_.load(std::memory_order_acquire) + too_long_.load(std::memory_order_acquire) +
           malformed_.load(std::memory_order_acquire);
  }
  /// Consumer only.
  std::uint64_t received() const noexcept { return received_; }
  /// Consumer only: true when nothing is queued (may turn false at any moment).
  bool empty() const noexcept { return queue_.empty(); }

 private:
  wake push(std::chrono::steady_clock::time_point now, double delta, std::span<const std::uint8_t> b) noexcept {
    input_queue::push_result r;
    try {
      r = queue_.try_push(b, now, delta);
    } catch (...) {  // bad_alloc growing a sysex slot
      r = input_queue::push_result::too_long;
    }
    if (r != input_queue::push_result::ok) {
      // relaxed: published by arrived_'s release below.
      (r == input_queue::push_result::too_long ? too_long_ : full_).fetch_add(1, std::memory_order_relaxed);
      // release: the consumer acquires arrived_ (or the flag below) and must see the count above.
      arrived_.fetch_add(1, std::memory_order_release);
      // acq_rel: one wake-up per report; take_overflow() clears the flag with acq_rel.
      return overflow_signalled_.exchange(true, std::memory_order_acq_rel) ? wake::none : wake::report_overflow;
    }
    // release: see the counters' comment.
    arrived_.fetch_add(1, std::memory_order_release);
    // acq_rel: release publishes the push to the consumer that clears the flag (it acquires);
    // the RMW order on the flag decides who wakes whom (see arm()).
    return signalled_.exchange(true, std::memory_order_acq_rel) ? wake::none : wake::deliver;
  }

  input_queue queue_;
  // Written by the producer.
  std::atomic<std::uint64_t> arrived_{0};
  std::atomic<std::uint64_t> full_{0};      // dropped: the queue was full
  std::atomic<std::uint64_t> too_long_{0};  // dropped: sysex over the limit
  // Written by the consumer (and read by any thread through dropped()).
  std::atomic<std::uint64_t> malformed_{0};
  std::atomic<bool> signalled_{false};
  std::atomic<bool> overflow_signalled_{false};
  // The gate.
  std::atomic<int> in_callback_{0};
  std::atomic<bool> closing_{false};
  // Consumer only.
  std::uint64_t received_ = 0;
  std::uint64_t reported_full_ = 0;
  std::uint64_t reported_too_long_ = 0;
};

}  // namespace tactus::midi::detail
