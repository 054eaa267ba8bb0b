// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <asio/io_context.hpp>
#include <asio/wait_traits.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>

// Virtual time for tests. manual_clock is a Clock whose now() moves only when a test calls
// advance(); Asio timers on it (asio::basic_waitable_timer<manual_clock>, and so
// tactus::basic_metronome<manual_clock>) fire as virtual time passes:
//
//     tactus::testing::manual_clock::reset();
//     tactus::basic_metronome<tactus::testing::manual_clock> m{io.get_executor(), tactus::bpm{120}};
//     ...
//     tactus::testing::advance(io, 10s);   // ten virtual seconds, every timer on its deadline
//
// A simulated hour runs in milliseconds, deterministically. Part of the library, not just of
// its tests: test your own tempo code with it.

namespace tactus::testing {

/// A steady Clock driven by hand. Its time is process-global (a Clock's now() is static).
/// Thread-safe: yes (now, advance and set may be called from any thread). Realtime-safe: yes.
struct manual_clock {
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::duration<rep, period>;
  using time_point = std::chrono::time_point<manual_clock, duration>;
  static constexpr bool is_steady = true;

  static time_point now() noexcept {
    // relaxed would do for a single test thread; acquire pairs with advance()'s release so a
    // thread that sees the new time also sees what the advancing thread wrote before it.
    return time_point(duration(now_.load(std::memory_order_acquire)));
  }

  /// Moves virtual time forward by `d` (>= 0; a negative d is ignored: the clock is steady).
  template <class Rep, class Period>
  static void advance(std::chrono::duration<Rep, Period> d) noexcept {
    const auto ns = std::chrono::duration_cast<duration>(d).count();
    if (ns > 0) now_.fetch_add(ns, std::memory_order_acq_rel);  // see now()
  }

  /// Moves virtual time forward to `t`; does nothing if `t` is not later than now().
  static void advance_to(time_point t) noexcept {
    auto cur = now_.load(std::memory_order_acquire);  // see now()
    while (t.time_since_epoch().count() > cur &&
           !now_.compare_exchange_weak(cur, t.time_since_epoch().count(), std::memory_order_acq_rel))
      ;
  }

  /// Back to the epoch (or to `t`). Call between tests, with no timer pending on this clock.
  static void reset(time_point t = time_point{}) noexcept {
    now_.store(t.time_since_epoch().count(), std::memory_order_release);  // see now()
    next_.store(t.time_since_epoch().count(), std::memory_order_relaxed);
  }

  /// The earliest deadline of a pending Asio timer on this clock, as Asio last reported it
  /// (see the wait_traits below); not later than now() when none is known to be pending.
  static time_point next_deadline() noexcept { return time_point(duration(next_.load(std::memory_order_relaxed))); }

  /// Called by the wait traits whenever Asio computes how long to wait for its earliest timer.
  static void note_deadline(time_point t) noexcept {
    // relaxed: a hint read by the thread that runs the io_context, which is the one writing it.
    next_.store(t.time_since_epoch().count(), std::memory_order_relaxed);
  }

 private:
  static inline std::atomic<rep> now_{0};
  static inline std::atomic<rep> next_{0};
};

/// Advances virtual time by `total`, stopping at every pending timer's deadline on the way and
/// running every handler that is ready there (io.poll()), so timers fire exactly on their
/// deadlines in virtual time, and a virtual hour of beats costs one poll per beat. With
/// `max_step`, time also stops at least every `max_step` (for code that reads now() in between).
/// Call from the thread that runs `io`; one io_context with manual-clock timers at a time.
template <class Rep1, class Period1, class Rep2 = std::int64_t, class Period2 = std::ratio<3600>>
void advance(asio::io_context& io, std::chrono::duration<Rep1, Period1> total,
             std::chrono::duration<Rep2, Period2> max_step = std::chrono::hours(1'000'000)) {
  using d = manual_clock::duration;
  const auto end = manual_clock::now() + std::chrono::duration_cast<d>(total);
  const auto step = std::chrono::duration_cast<d>(max_step);
  auto run_ready = [&io] {
    io.restart();
    io.poll();
  };
  run_ready();
  while (manual_clock::now() < end) {
    const auto now = manual_clock::now();
    auto target = now + step < end && now + step > now ? now + step : end;
    const auto next = manual_clock::next_deadline();
    if (next > now && next < target) target = next;
    manual_clock::advance_to(target);
    run_ready();
  }
}

}  // namespace tactus::testing

namespace asio {
/// Timers on the manual clock. A virtual deadline means nothing to the reactor's real-time
/// sleep, and Asio's epoll reactor looks at its timer queues only when its timerfd fires; so the
/// wait is always "zero": every poll() checks the timers against manual_clock::now(). Drive
/// an io_context with manual-clock timers by poll() (testing::advance does); run() would spin.
template <>
struct wait_traits<tactus::testing::manual_clock> {
  using clock = tactus::testing::manual_clock;
  static clock::duration to_wait_duration(const clock::duration& d) {
    // Asio asks with d = earliest deadline - now: remember that deadline for testing::advance.
    clock::note_deadline(clock::now() + d);
    return clock::duration::zero();
  }
  static clock::duration to_wait_duration(const clock::time_point& t) {
    clock::note_deadline(t);
    return clock::duration::zero();
  }
};
}  // namespace asio
