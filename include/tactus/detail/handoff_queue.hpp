// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <thread>
#include <type_traits>

// The hand-off from foreign threads to one consumer on an executor, shared by
// tactus::thread_channel (producer threads) and midi::input (RtMidi's callback thread): one
// implementation of
//
//  - a bounded queue of preallocated slots that producers fill in place, without waiting, a lock
//    or an allocation of ours; when it is full, either the new item or the oldest one is dropped,
//    and every drop is counted. Several producers may push at once (a sequence-numbered ring,
//    after Dmitry Vyukov's bounded MPMC queue: a producer that drops the oldest item pops it as a
//    consumer would, so it can never take a slot the consumer is reading);
//  - the wake flag: a producer learns whether its item is the first since the consumer last
//    armed, so the owner wakes the consumer once per burst, not once per item (the owner's
//    wake-up is an eventfd write, detail/wakeup_fd.hpp; the queue knows nothing of Asio);
//  - the gate: shut() waits until no producer is inside produce(), so that afterwards nothing is
//    pushed any more and the owner may free what a producer touches (the eventfd, RtMidi's port).
//
// The counts are exact: arrived() == overflowed() + what the consumer popped + queued, at any
// quiet moment (the owner adds its own causes of drops, such as midi::input's too-long sysex).
// A usage sketch (detail/: not checked against a snippet):
//
//   handoff_queue<slot> q{1024, when_full::drop_oldest};
//   q.produce([&]() noexcept {                                     // any thread
//     auto r = q.push([&](slot& s) noexcept { s = ...; }, [](slot& s) noexcept { s.clear(); });
//     if (r.wake) wake.signal();
//   });
//   while (q.pop([&](slot& s) { use(s); })) {}                     // the consumer
//   if (!q.arm()) wait_for_wake();                                 // nothing slipped in: sleep

namespace tactus::detail {

/// Which item a full handoff_queue drops.
enum class when_full : std::uint8_t {
  drop_newest,  ///< the one being pushed
  drop_oldest,  ///< the oldest queued one, to make room for the new one
};

/// A bounded multi-producer, single-consumer queue of `Slot`s (default-constructible; each slot is
/// constructed once and reused, so a slot may keep buffers between uses).
///
/// Thread-safe: produce(), push(), refuse() and the counters from any thread; pop(), arm(),
/// ready(), take_overflow() from the one consumer only (push() also pops when dropping the oldest;
/// the ring is safe for that). Realtime-safe: producers take no lock and allocate nothing here;
/// what `fill` and `discard` do is the owner's.
/// Lock-free, not wait-free: under contention a producer retries a compare-exchange; it never
/// waits for another thread beyond a bounded spin (see push()). A producer preempted in the
/// middle of a push makes the others see the queue as full at that slot, and they drop; the
/// consumer sees the queue end there until the push completes, which then wakes it.
template <class Slot>
class handoff_queue {
 public:
  /// What push() did.
  struct pushed {
    bool queued = false;           ///< false: this item was dropped (counted in overflowed())
    bool dropped_oldest = false;   ///< an older item was dropped (counted) to make room for it
    bool wake = false;             ///< queued, and the first since the consumer armed: wake it
    bool report_overflow = false;  ///< a drop, and the first since take_overflow(): tell the consumer
  };

  /// A queue of `capacity` slots (at least 1). Throws std::invalid_argument for 0.
  handoff_queue(std::size_t capacity, when_full policy)
      : size_(checked(capacity)), policy_(policy), cells_(new cell[size_]) {
    // relaxed: the queue reaches other threads through whatever hands them the object (a thread
    // start, a mutex), which orders these stores before their first access.
    for (std::size_t i = 0; i < size_; ++i) cells_[i].seq.store(i, std::memory_order_relaxed);
  }

  handoff_queue(const handoff_queue&) = delete;
  handoff_queue& operator=(const handoff_queue&) = delete;

  std::size_t capacity() const noexcept { return size_; }
  when_full policy() const noexcept { return policy_; }

  // --- producers -----------------------------------------------------------------------------

  /// The gate: runs `f()` (noexcept) unless shut() has begun; returns whether it ran. push() and
  /// refuse() belong inside it, and so does the owner's wake-up, so that shut() also waits for
  /// that.
  template <class F>
  bool produce(F&& f) noexcept {
    static_assert(std::is_nothrow_invocable_v<F&>, "handoff_queue::produce: f must be noexcept");
    // seq_cst on this increment and on closing_ (in shut()): either shut() sees the increment, or
    // we see closing_ (a store-load pair on two variables, which release/acquire does not order).
    inside_.fetch_add(1, std::memory_order_seq_cst);
    const bool open = !closing_.load(std::memory_order_seq_cst);
    if (open) f();
    // release: what f() wrote (slots, counters, the wake-up) happens before shut() sees zero.
    inside_.fetch_sub(1, std::memory_order_release);
    return open;
  }

  /// Queues one item: claims a free slot and calls `fill(Slot&)` (noexcept) on it. When the queue
  /// is full, drops the new item (when_full::drop_newest) or pops the oldest through
  /// `discard(Slot&)` (noexcept; it runs on this thread) and queues the new one
  /// (when_full::drop_oldest; the new one is dropped instead when the oldest cannot be taken at
  /// once: its own producer is still filling it). Each drop is counted. Bounded work: at most one
  /// discard per call, and a spin of about a microsecond at most when the slot it needs is being
  /// emptied at that instant.
  template <class Fill, class Discard>
  pushed push(Fill&& fill, Discard&& discard) noexcept {
    static_assert(std::is_nothrow_invocable_v<Fill&, Slot&>, "handoff_queue::push: fill must be noexcept");
    static_assert(std::is_nothrow_invocable_v<Discard&, Slot&>, "handoff_queue::push: discard must be noexcept");
    pushed r;
    bool tried_oldest = false;
    int spins = 0;
    // relaxed: the position is only a hint; the cell's sequence (acquired below) decides.
    auto pos = tail_.load(std::memory_order_relaxed);
    for (;;) {
      cell& c = cells_[pos % size_];
      // acquire: pairs with the release of whoever freed this cell (the consumer, or a producer
      // dropping its item), so that their reads of the slot happen before our writes.
      const auto seq = c.seq.load(std::memory_order_acquire);
      const auto lag = static_cast<std::int64_t>(seq - pos);
      if (lag == 0) {
        // relaxed: the exchange only claims the position; the slot is published by the sequence.
        // On failure it reloads pos, and we look again.
        if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed, std::memory_order_relaxed)) {
          fill(c.slot);
          // release: publishes the filled slot to whoever acquires this sequence (pop()).
          c.seq.store(pos + 1, std::memory_order_release);
          r.queued = true;
          break;
        }
      } else if (lag < 0) {
        // The slot one lap back is still occupied. When its item was taken already (head_ is
        // past it), whoever took it is moving it out right now: wait a moment for the slot, a
        // bounded spin (if that thread was preempted there, we go on as if the queue were full).
        // relaxed: a hint; the sequence decides.
        if (spins < max_spins && head_.load(std::memory_order_relaxed) + size_ > pos) {
          ++spins;
          cpu_relax();
          continue;
        }
        // The queue is full.
        if (policy_ == when_full::drop_oldest && !tried_oldest) {
          tried_oldest = true;
          if (pop(discard)) {
            // relaxed: published by arrived_'s release below.
            overflowed_.fetch_add(1, std::memory_order_relaxed);
            r.dropped_oldest = true;
          }
          pos = tail_.load(std::memory_order_relaxed);  // relaxed: a hint, as above
          continue;
        }
        overflowed_.fetch_add(1, std::memory_order_relaxed);  // relaxed: as above
        break;
      } else {
        pos = tail_.load(std::memory_order_relaxed);  // another producer took pos: catch up
      }
    }
    // release: whoever acquires arrived_ also sees this item's slot or its drop count.
    arrived_.fetch_add(1, std::memory_order_release);
    // acq_rel: release publishes our slot to the consumer that clears the flag (it acquires);
    // the order of the exchanges on the flag decides who wakes whom (see arm()).
    if (r.queued) r.wake = !ready_flag_.exchange(true, std::memory_order_acq_rel);
    // acq_rel: one report per take_overflow(), which clears the flag (acq_rel) before reading.
    if (!r.queued || r.dropped_oldest) r.report_overflow = !overflow_flag_.exchange(true, std::memory_order_acq_rel);
    return r;
  }

  /// Counts an item the owner refused before the queue (midi::input: a sysex over its limit);
  /// the owner counts the cause first (relaxed: this increment publishes it). Returns whether
  /// the drop should be reported (as pushed::report_overflow).
  bool refuse() noexcept {
    // release: publishes the owner's count of the cause to whoever acquires arrived_.
    arrived_.fetch_add(1, std::memory_order_release);
    return !overflow_flag_.exchange(true, std::memory_order_acq_rel);  // acq_rel: see push()
  }

  // --- the consumer --------------------------------------------------------------------------

  /// Closes the gate and waits (yielding the processor: a producer's call takes microseconds)
  /// until no producer is inside produce(). Afterwards nothing is pushed any more. Any thread;
  /// idempotent. Not for a thread that is inside produce() itself.
  void shut() noexcept {
    closing_.store(true, std::memory_order_seq_cst);  // seq_cst: see produce()
    // acquire: pairs with the producers' release decrement; their pushes happened before.
    while (inside_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
  }
  /// True once shut() has begun.
  bool is_shut() const noexcept { return closing_.load(std::memory_order_acquire); }  // acquire: see shut()

  /// Takes the oldest item: calls `take(Slot&)` on it (it may throw: the slot is released all
  /// the same, and the item is gone). Returns false when the queue is empty, or when its oldest
  /// item is still being filled (its producer wakes the consumer when it is done).
  template <class Take>
  bool pop(Take&& take) {
    // relaxed: a hint; the cell's sequence decides.
    auto pos = head_.load(std::memory_order_relaxed);
    for (;;) {
      cell& c = cells_[pos % size_];
      // acquire: pairs with the producer's release of the sequence: the slot's contents are visible.
      const auto seq = c.seq.load(std::memory_order_acquire);
      const auto lag = static_cast<std::int64_t>(seq - (pos + 1));
      if (lag == 0) {
        // relaxed: claims the position only (a dropping producer may race us for it).
        if (head_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed, std::memory_order_relaxed)) {
          struct release_slot {
            cell& c;
            std::uint64_t next;
            // release: our reads of the slot happen before a producer refills it (it acquires).
            ~release_slot() { c.seq.store(next, std::memory_order_release); }
          } done{c, pos + size_};
          take(c.slot);
          return true;
        }
      } else if (lag < 0) {
        return false;
      } else {
        pos = head_.load(std::memory_order_relaxed);  // a dropping producer took pos: catch up
      }
    }
  }

  /// True when pop() would take an item now (it may turn true at any moment).
  bool ready() const noexcept {
    auto pos = head_.load(std::memory_order_relaxed);  // relaxed: a hint, as in pop()
    for (;;) {
      // acquire: a true answer comes with the slot's contents (pairs with the producer's release).
      const auto seq = cells_[pos % size_].seq.load(std::memory_order_acquire);
      const auto lag = static_cast<std::int64_t>(seq - (pos + 1));
      if (lag == 0) return true;
      if (lag < 0) return false;
      pos = head_.load(std::memory_order_relaxed);
    }
  }

  /// The consumer is about to wait: lets the next push wake it. Returns true when an item slipped
  /// in before (its push saw the flag still set and did not wake): take it now instead of waiting.
  bool arm() noexcept {
    // acq_rel: if a producer's exchange came first in the flag's order, we acquire its slot and
    // ready() sees it; if ours came first, that producer reads false and wakes us.
    ready_flag_.exchange(false, std::memory_order_acq_rel);
    return ready();
  }

  /// Clears the overflow flag, so that the next drop reports again; returns whether it was set.
  /// Read the counts after it (acquire), to see every drop that found the flag set.
  bool take_overflow() noexcept { return overflow_flag_.exchange(false, std::memory_order_acq_rel); }

  // --- counts (any thread) -------------------------------------------------------------------

  /// Items pushed or refused so far (not those offered after shut()).
  std::uint64_t arrived() const noexcept { return arrived_.load(std::memory_order_acquire); }  // acquire: see push()
  /// Items dropped because the queue was full (either policy).
  std::uint64_t overflowed() const noexcept {
    // acquire: the count may run ahead of an arrived() read before it, never behind one after it.
    return overflowed_.load(std::memory_order_acquire);
  }
  /// Items queued: exact when nothing is pushed or popped meanwhile, else an estimate.
  std::size_t size() const noexcept {
    // relaxed: an estimate (see above); clamped, as the two loads are not one snapshot.
    const auto h = head_.load(std::memory_order_relaxed);
    const auto t = tail_.load(std::memory_order_relaxed);
    return t > h ? static_cast<std::size_t>(t - h) : 0;
  }

 private:
  struct cell {
    // Lap bookkeeping: pos (free for the push at pos), pos + 1 (filled at pos), pos + size
    // (taken, free for the push one lap later).
    std::atomic<std::uint64_t> seq{0};
    Slot slot{};
  };

  static constexpr int max_spins = 64;  // about a microsecond
  static void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }

  static std::size_t checked(std::size_t capacity) {
    if (capacity == 0) throw std::invalid_argument("tactus: a hand-off queue needs a capacity of at least 1");
    return capacity;
  }

  const std::size_t size_;
  const when_full policy_;
  std::unique_ptr<cell[]> cells_;
  // Separate cache lines: producers write tail_, the consumer (and dropping producers) head_.
  alignas(64) std::atomic<std::uint64_t> head_{0};
  alignas(64) std::atomic<std::uint64_t> tail_{0};
  alignas(64) std::atomic<std::uint64_t> arrived_{0};
  std::atomic<std::uint64_t> overflowed_{0};
  std::atomic<bool> ready_flag_{false};
  std::atomic<bool> overflow_flag_{false};
  // The gate.
  alignas(64) std::atomic<int> inside_{0};
  std::atomic<bool> closing_{false};
};

}  // namespace tactus::detail
