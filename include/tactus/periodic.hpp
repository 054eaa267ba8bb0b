// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/detail/asio_compat.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/basic_waitable_timer.hpp>
#include <asio/error.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <system_error>
#include <type_traits>

// A periodic task with a fast rate while busy and a slow one while idle: a daemon's
// update_state loop (`while True: read(); await asyncio.sleep(0.1 if busy else 1.0)`), without its
// drift: every deadline is computed from an anchor, never by adding a period to the last wake-up.
//
//   tactus::periodic state_loop{io.get_executor(), 100ms, 1s};   // busy every 100 ms, idle every 1 s
//   tasks.spawn(state_loop.run([&] {
//     state = device.read_state();
//     state_loop.set_busy(state.moving);                         // the rate follows the state
//   }));

namespace tactus {

/// What a periodic body is told about its tick.
template <class Clock>
struct basic_periodic_tick {
  std::int64_t index = 0;                  ///< ticks since run() began, skipped ones included
  typename Clock::time_point scheduled{};  ///< the tick's exact time on the grid
  typename Clock::time_point fired{};      ///< when the loop woke for it (>= scheduled)
  std::int64_t skipped = 0;                ///< ticks skipped just before this one (see run())
  bool busy = false;                       ///< the rate in force for this tick
};
using periodic_tick = basic_periodic_tick<std::chrono::steady_clock>;

/// A drift-free periodic loop on `Clock` (std::chrono::steady_clock, or testing::manual_clock)
/// with two rates, busy and idle.
///
/// Tick k is due at anchor + (k − anchor_index) · period. A rate change (set_busy) re-anchors at
/// the last tick delivered, so the next tick is due one new period after that one; if that time
/// has passed (going busy in the middle of a long idle wait), the next tick is due at once and
/// the grid goes on from that instant, without waiting out the idle period. Overruns skip: when the loop looks and several ticks are due (a body that
/// took longer than a period, a stalled executor), only the latest is delivered, late by less
/// than a period, and the earlier ones are counted in skipped(); there is never a burst.
///
/// Lifetime: destroying it while run() is suspended makes run() throw operation_aborted without
/// touching it. Thread-safe: no; every member on the run()'s executor. Realtime-safe: no.
template <class Clock = std::chrono::steady_clock>
class basic_periodic {
 public:
  using clock_type = Clock;
  using duration = typename Clock::duration;
  using time_point = typename Clock::time_point;
  using tick_type = basic_periodic_tick<Clock>;

  /// One rate: every `period`.
  template <class Rep, class Period>
  basic_periodic(asio::any_io_executor ex, std::chrono::duration<Rep, Period> period)
      : basic_periodic(std::move(ex), period, period) {}

  /// Every `busy_period` while busy, every `idle_period` while idle (the start). Throws
  /// std::invalid_argument for a period that is not positive.
  template <class Rep1, class Period1, class Rep2, class Period2>
  basic_periodic(asio::any_io_executor ex, std::chrono::duration<Rep1, Period1> busy_period,
                 std::chrono::duration<Rep2, Period2> idle_period)
      : s_(std::make_shared<state>(ex, std::chrono::duration_cast<duration>(busy_period),
                                   std::chrono::duration_cast<duration>(idle_period))) {
    if (s_->busy_period_ <= duration::zero() || s_->idle_period_ <= duration::zero())
      throw std::invalid_argument("tactus::periodic: a period must be positive");
  }

  ~basic_periodic() {
    s_->gone_ = true;
    s_->timer_.cancel();
  }
  basic_periodic(const basic_periodic&) = delete;
  basic_periodic& operator=(const basic_periodic&) = delete;

  /// Calls `body` on every tick, at once first, until cancelled. `body` is `void()`,
  /// `void(const tick_type&)`, or the same returning asio::awaitable<void> (awaited before the
  /// next tick is considered: the body never runs twice at once). An exception from body ends
  /// run() with it. Cancellation (any type, or the periodic's destruction): throws
  /// std::system_error with asio::error::operation_aborted, at once when waiting, else at the
  /// body's next co_await. Resumes on the caller's executor. Throws std::logic_error if already
  /// running.
  template <class F>
  asio::awaitable<void> run(F body) {
    auto s = s_;
    if (s->running_) throw std::logic_error("tactus::periodic: run() while already running");
    s->running_ = true;
    struct on_exit {
      std::shared_ptr<state> s;
      ~on_exit() { s->running_ = false; }
    } guard{s};
    s->anchor_time_ = Clock::now();
    s->anchor_index_ = 0;
    s->last_ = -1;
    std::int64_t next = 0;
    const auto cs = co_await asio::this_coro::cancellation_state;
    for (;;) {
      if (s->gone_ || cs.cancelled() != asio::cancellation_type::none)
        throw std::system_error(asio::error::operation_aborted);
      const auto now = Clock::now();
      const auto due = s->time_of(next);
      if (now < due) {
        s->timer_.expires_at(due);
        // Woken by the deadline, by set_busy (re-timed) or by cancellation: look again.
        co_await s->timer_.async_wait(detail::as_tuple(asio::use_awaitable));
        continue;
      }
      // The latest tick due by now: the ones before it are skipped.
      const auto latest = s->last_index_at_or_before(now);
      tick_type t;
      t.index = latest;
      t.scheduled = s->time_of(latest);
      t.fired = now;
      t.skipped = latest - next;
      t.busy = s->busy_;
      s->skipped_ += t.skipped;
      ++s->delivered_;
      s->last_ = latest;
      next = latest + 1;
      if constexpr (std::is_invocable_v<F&, const tick_type&>) {
        if constexpr (std::is_void_v<std::invoke_result_t<F&, const tick_type&>>) body(t);
        else co_await body(t);
      } else {
        static_assert(std::is_invocable_v<F&>,
                      "tactus::periodic: the body is callable with no argument or with a const tick_type&");
        if constexpr (std::is_void_v<std::invoke_result_t<F&>>) body();
        else co_await body();
      }
    }
  }

  /// Switches between the busy and the idle rate; from the next tick on (see the class comment).
  void set_busy(bool busy) {
    if (busy == s_->busy_) return;
    s_->reanchor(busy);
    s_->timer_.cancel();  // a wait in progress looks again at the new deadline
  }
  bool busy() const noexcept { return s_->busy_; }
  /// The period in force.
  duration period() const noexcept { return s_->period(); }
  /// When the next tick is due (meaningful while run() waits).
  time_point next_deadline() const noexcept { return s_->time_of(s_->last_ + 1); }
  /// Ticks delivered, and skipped, since construction.
  std::int64_t delivered() const noexcept { return s_->delivered_; }
  std::int64_t skipped() const noexcept { return s_->skipped_; }

 private:
  struct state {
    state(asio::any_io_executor ex, duration busy, duration idle)
        : timer_(ex), busy_period_(busy), idle_period_(idle) {}

    duration period() const noexcept { return busy_ ? busy_period_ : idle_period_; }
    time_point time_of(std::int64_t k) const noexcept { return anchor_time_ + period() * (k - anchor_index_); }
    std::int64_t last_index_at_or_before(time_point t) const noexcept {
      return anchor_index_ + (t - anchor_time_) / period();
    }
    // The new rate counts from the last tick delivered; if the first tick at the new rate is
    // already past, it is due now and the grid goes on from there (nothing counts as skipped:
    // those times were never on the grid).
    void reanchor(bool busy) {
      if (last_ < 0) {  // not started: run() anchors
        busy_ = busy;
        return;
      }
      anchor_time_ = time_of(last_);
      anchor_index_ = last_;
      busy_ = busy;
      const auto now = Clock::now();
      if (time_of(last_ + 1) < now) {
        anchor_time_ = now;
        anchor_index_ = last_ + 1;
      }
    }

    asio::basic_waitable_timer<Clock> timer_;
    duration busy_period_;
    duration idle_period_;
    time_point anchor_time_{};
    std::int64_t anchor_index_ = 0;
    std::int64_t last_ = -1;  // the last tick delivered
    std::int64_t delivered_ = 0;
    std::int64_t skipped_ = 0;
    bool busy_ = false;
    bool running_ = false;
    bool gone_ = false;
  };

  std::shared_ptr<state> s_;
};

using periodic = basic_periodic<>;

}  // namespace tactus
