// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/jack/cycle.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

// The native JACK output's two halves, apart from libjack so that they are tested in virtual time
// (tests/midi_jack_schedule_test.cpp):
//
// - event_ring: the lock-free single-producer single-consumer ring from the executor (send,
//   send_at) to JACK's process thread. Preallocated slots of max_event_bytes; neither side
//   blocks, locks or allocates. A message longer than a slot (a long sysex) is refused by the
//   output before it gets here (see output::send).
// - rt_schedule: what the process thread keeps between cycles: a preallocated pool of messages
//   sorted by (time, order sent). A scheduled message's time is the one asked for (send_at); an
//   immediate message's (send) is the moment it was sent. Each cycle writes the messages whose
//   time falls before its end, in that order, which is increasing frame order as
//   jack_midi_event_write requires: those whose time has passed at offset 0 (scheduled ones
//   counted late; immediate ones not), the others at the offset where their time falls
//   (cycle::offset_of). So a message sent now never overtakes one scheduled earlier for a time
//   already past (a note-off at the end of a note, and the same key struck again at that
//   instant, keep their order), and one sent within the cycle being written lands on the frame
//   of the moment it was sent. A write that fails (the port's buffer is full) leaves that
//   message and the rest for the next cycle.
// - A cancel event (the output's panic() and close()) sends the scheduled note-offs at once (as
//   if sent at the cancel's moment) and drops, counted, the scheduled note-ons still to come and
//   every other scheduled message after the cancel's `keep_until` (panic: its moment; close: the
//   close_drain after it, so that a STOP scheduled on the next pulse still goes): a note whose
//   note-on went out always gets its note-off, and a note-on scheduled after the panic never
//   sounds.

namespace tactus::midi::jack {

/// The longest message one slot carries (a sysex longer than this is refused by send).
inline constexpr std::size_t max_event_bytes = 256;

/// One message on its way to the process thread.
struct rt_event {
  enum class kind : std::uint8_t {
    now,     ///< send at once: time_ns is the moment it was sent
    at,      ///< send at time_ns
    cancel,  ///< drop the scheduled messages except note-offs, which go out at once (time_ns: now)
  };
  kind what = kind::now;
  std::uint16_t size = 0;
  std::int64_t time_ns = 0;     ///< steady_clock nanoseconds
  std::int64_t keep_until = 0;  ///< kind::cancel: scheduled messages up to this time stay
  std::uint64_t seq = 0;        ///< the order sent, for ties
  std::array<std::uint8_t, max_event_bytes> bytes{};

  std::span<const std::uint8_t> data() const noexcept { return {bytes.data(), size}; }
  /// A note-off (0x8n, or 0x9n with velocity 0), which a cancel keeps.
  bool is_note_off() const noexcept {
    if (size < 3) return false;
    const auto s = bytes[0] & 0xF0;
    return s == 0x80 || (s == 0x90 && bytes[2] == 0);
  }
  bool is_note_on() const noexcept { return size >= 3 && (bytes[0] & 0xF0) == 0x90 && bytes[2] != 0; }
};

/// A bounded single-producer single-consumer ring of T (default-constructible, copied in and
/// out). Producer: try_push; consumer: try_pop. Lock-free, allocation-free after construction.
template <class T>
class spsc_ring {
 public:
  explicit spsc_ring(std::size_t capacity) : slots_(capacity + 1) {}

  std::size_t capacity() const noexcept { return slots_.size() - 1; }

  /// Producer: false when full.
  bool try_push(const T& v) noexcept {
    const auto h = head_.load(std::memory_order_relaxed);  // relaxed: only the producer writes head_
    const auto next = (h + 1) % slots_.size();
    // acquire: the consumer's release of tail_ after it copied the slot out, so we may overwrite.
    if (next == tail_.load(std::memory_order_acquire)) return false;
    slots_[h] = v;
    head_.store(next, std::memory_order_release);  // release: publishes the slot's contents
    return true;
  }

  /// Consumer: false when empty.
  bool try_pop(T& out) noexcept {
    const auto t = tail_.load(std::memory_order_relaxed);          // relaxed: only the consumer writes tail_
    if (t == head_.load(std::memory_order_acquire)) return false;  // acquire: pairs with try_push's release
    out = slots_[t];
    tail_.store((t + 1) % slots_.size(), std::memory_order_release);  // release: the slot is free again
    return true;
  }

 private:
  std::vector<T> slots_;
  alignas(64) std::atomic<std::size_t> head_{0};
  alignas(64) std::atomic<std::size_t> tail_{0};
};

/// The process thread's schedule (see above). Thread-safe: no (the process thread), except the
/// counters, which any thread reads. Realtime-safe: take() and run_cycle() neither allocate nor
/// lock; every buffer is sized by the constructor.
class rt_schedule {
 public:
  explicit rt_schedule(std::size_t capacity) : pool_(capacity == 0 ? 1 : capacity) {
    free_.reserve(pool_.size());
    for (std::size_t i = pool_.size(); i-- > 0;) free_.push_back(std::uint32_t(i));
    pending_.reserve(pool_.size());
  }

  std::size_t capacity() const noexcept { return pool_.size(); }
  /// Messages held now (scheduled and immediate). Process thread only.
  std::size_t size() const noexcept { return pending_.size(); }

  /// Takes one event from the ring. A message that finds the pool full is dropped and counted
  /// (the output bounds what is in flight, so this does not happen through it).
  void take(const rt_event& e) noexcept {
    if (e.what == rt_event::kind::cancel) return cancel(e.time_ns, e.keep_until);
    if (free_.empty()) {
      bump(dropped_);
      bump(retired_);
      return;
    }
    const auto i = free_.back();
    free_.pop_back();
    pool_[i] = e;
    insert(i);
  }

  /// Writes this cycle's messages through `write(offset, bytes) -> bool` (jack_midi_event_write
  /// returning 0), in increasing offset order. Returns how many were written.
  template <class Write>
  std::size_t run_cycle(const cycle& c, Write&& write) noexcept {
    std::size_t p = 0;  // pending_[0, p) written
    for (; p < pending_.size(); ++p) {
      const auto& e = pool_[pending_[p]];
      const auto where = c.place(time_of(e));
      if (where == cycle::placement::future) break;
      const bool past = where == cycle::placement::past;
      if (!write(past ? std::uint32_t(0) : c.offset_of(time_of(e)), e.data())) break;
      if (past && e.what == rt_event::kind::at) bump(late_);
    }
    for (std::size_t k = 0; k < p; ++k) release(pending_[k]);
    pending_.erase(pending_.begin(), pending_.begin() + std::ptrdiff_t(p));
    return p;
  }

  // Counters, any thread. relaxed loads: plain counts; retired() is acquire (see below).
  /// Scheduled messages written after their time (at offset 0 of the first cycle that could).
  std::uint64_t late() const noexcept { return late_.load(std::memory_order_relaxed); }
  /// Messages dropped here: cancelled by a cancel event, or finding the pool full.
  std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }
  /// Messages done with: written or dropped. The output compares it with what it pushed to know
  /// how many are in flight (acquire: pairs with the release in bump()).
  std::uint64_t retired() const noexcept { return retired_.load(std::memory_order_acquire); }

 private:
  static cycle::time_point time_of(const rt_event& e) noexcept {
    return cycle::time_point(std::chrono::nanoseconds(e.time_ns));
  }
  static bool before(const rt_event& a, const rt_event& b) noexcept {
    return a.time_ns != b.time_ns ? a.time_ns < b.time_ns : a.seq < b.seq;
  }
  static void bump(std::atomic<std::uint64_t>& c) noexcept {
    // Only this thread writes: a load and a store, release so that retired() readers see the
    // slot's reuse ordered after it.
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }

  void release(std::uint32_t i) noexcept {
    free_.push_back(i);  // never beyond the reserved capacity
    bump(retired_);
  }

  void insert(std::uint32_t i) noexcept {
    const auto pos = std::upper_bound(pending_.begin(), pending_.end(), i,
                                      [this](std::uint32_t a, std::uint32_t b) { return before(pool_[a], pool_[b]); });
    pending_.insert(pos, i);  // within the reserved capacity: no allocation
  }

  void cancel(std::int64_t now_ns, std::int64_t keep_until) noexcept {
    std::size_t kept = 0;
    for (auto i : pending_) {
      auto& e = pool_[i];
      if (e.what == rt_event::kind::now) {
        pending_[kept++] = i;  // sent before the cancel: goes out as it was
      } else if (e.is_note_off()) {
        if (e.time_ns > now_ns) e.time_ns = now_ns;  // at once, not late
        e.what = rt_event::kind::now;
        pending_[kept++] = i;
      } else if (e.time_ns <= std::max(now_ns, keep_until) && !(e.is_note_on() && e.time_ns > now_ns)) {
        pending_[kept++] = i;  // due already, or within what the cancel keeps
      } else {
        bump(dropped_);
        release(i);
      }
    }
    pending_.resize(kept);
    // std::sort allocates nothing (unlike stable_sort); (time, seq) is a total order.
    std::sort(pending_.begin(), pending_.end(),
              [this](std::uint32_t a, std::uint32_t b) { return before(pool_[a], pool_[b]); });
  }

  std::vector<rt_event> pool_;
  std::vector<std::uint32_t> free_;     // indices of free pool_ entries
  std::vector<std::uint32_t> pending_;  // sorted by (time, seq)
  std::atomic<std::uint64_t> late_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> retired_{0};
};

}  // namespace tactus::midi::jack
