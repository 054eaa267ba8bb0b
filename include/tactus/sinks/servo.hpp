// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/beats.hpp>
#include <tactus/metronome.hpp>
#include <tactus/sinks/detail/any_driver.hpp>
#include <tactus/sinks/detail/sink_core.hpp>
#include <tactus/sinks/easing.hpp>
#include <tactus/sinks/sink.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

// A servo: a driver that takes an angle, moved in time. `set(angle)` goes at once, as the
// lecture's servo.set() does; a move goes there over a time, at a speed, or over beats of a
// metronome (following its tempo changes, ending exactly on the beat), updated at the servo's
// rate (50 Hz by default) together with every other servo of that rate, on one timer:
//
//   tactus::servo arm{io.get_executor(), tactus::sinks::sysfs_pwm{"/sys/class/pwm/pwmchip0", 0}};
//   co_await arm.move_to(150, 800ms, tactus::ease::in_out);
//   co_await arm.move_to(90, m, tactus::beats{2});
//
// A new move (or set) cancels the running one: latest wins. Positions are in the driver's units
// (degrees for the PWM drivers, 0 to 180 by default), within the servo's limits.

namespace tactus {

/// Units per second, for a move at a speed: `servo.move_to(90, tactus::speed{60})` moves at
/// 60 degrees per second. Must be > 0 and finite.
struct speed {
  double per_second;
};

/// What a move completes with: the target it went for (within the limits) and the one asked
/// for. They differ when the request was out of range: then it was clamped, counted in
/// clamped_count(), and the out-of-range value never sent.
struct move_result {
  double target = 0;
  double requested = 0;
  bool clamped() const noexcept { return target != requested; }
};

/// A servo's limits and behaviour.
struct servo_options {
  /// The range the servo may be sent to, in the driver's units (degrees).
  double min = 0;
  double max = 180;
  /// The safe position: sent at construction, by rest(), and at destruction.
  double rest = 90;
  /// Updates per second of a move (1 to 1000 Hz); servos with the same rate share one timer.
  double rate_hz = 50;
  /// How long before a position the command must go out for the servo to be there on time (its
  /// travel, the driver's delay). Default: the driver's lead_time(), if it declares one, else 0.
  /// Timed to a position, the command goes out at the first exact position (1/11 531 520 beat)
  /// not before that instant: exactly on it when the lead is a whole number of units (50 ms at
  /// 120 BPM is 0.1 beat), else less than a unit later (43 ns at 120 BPM).
  std::optional<std::chrono::nanoseconds> lead{};
  /// The easing of moves that give none. Default: linear.
  easing ease{};
  /// Send `rest` at construction, and at destruction.
  bool rest_at_start = true;
  bool rest_at_close = true;
};

/// A servo on `Clock`, driven by any level sink (sinks::sysfs_pwm, a sinks::pca9685 channel,
/// sinks::recording_driver, your own), owned (moved in) or referred to (std::ref(driver)).
///
/// Every move is an Asio asynchronous operation: any completion token, signature
/// void(std::error_code, move_result), completing on the handler's associated executor (default:
/// the servo's), never inside the initiating call. It completes without error when the servo
/// reached its target; with asio::error::operation_aborted when a newer move or set() on the
/// same servo replaced it, when it was cancelled through its cancellation slot (any type), when
/// the metronome it is timed on stopped, or when the servo was destroyed: the servo then stays
/// where the last update left it. A driver that throws ends it with the exception's
/// std::error_code (sinks::errc::driver_failed for other exceptions), counted in error_count().
/// The driver's set() runs on the executor's thread: a sysfs or I2C write is a short syscall.
///
/// Thread-safe: no (call on the servo's executor). Realtime-safe: no. The io_context must
/// outlive the servo, as for every Asio I/O object, and a metronome the moves timed on it.
template <class Clock = std::chrono::steady_clock>
class basic_servo {
 public:
  using clock_type = Clock;
  using time_point = typename Clock::time_point;
  using duration = typename Clock::duration;
  using metronome_type = basic_metronome<Clock>;
  using executor_type = asio::any_io_executor;

  /// A servo on `driver`, sent to `o.rest` now (unless rest_at_start is false). Throws
  /// std::invalid_argument for inconsistent options, and what the driver's first set() throws.
  template <class Driver>
  basic_servo(executor_type ex, Driver&& driver, servo_options o = {})
      : s_(std::make_shared<state>(std::move(ex), sinks::detail::any_driver(std::forward<Driver>(driver)), check(o))) {
    static_assert(sinks::level_sink<sinks::unwrapped_t<Driver>>,
                  "tactus::servo: the driver must take an angle: set(double)");
    if (o.rest_at_start) s_->send(rest_);
    else s_->value_from(rest_);
  }

  /// Ends the running move (operation_aborted), sends the rest position (unless rest_at_close
  /// is false; an error there is ignored) and releases the driver.
  ~basic_servo() {
    if (!s_) return;
    if (rest_at_close_ && !s_->closed()) {
      try {
        s_->set_now(rest_);
      } catch (...) {
      }
    }
    s_->close();
  }
  basic_servo(basic_servo&&) noexcept = default;
  basic_servo& operator=(basic_servo&&) = delete;

  executor_type get_executor() const noexcept { return s_->executor(); }

  /// The last value sent to the driver.
  double get() const noexcept { return s_->value(); }
  double min() const noexcept { return s_->lo(); }
  double max() const noexcept { return s_->hi(); }
  double rest_position() const noexcept { return rest_; }
  /// The lead in force (see servo_options::lead).
  duration lead() const noexcept { return s_->lead(); }
  /// The period of the servo's updates.
  duration period() const noexcept { return s_->period(); }
  /// Whether a move is running (or waiting for its start position).
  bool moving() const noexcept { return s_->busy(); }
  /// Out-of-range targets clamped, and driver (or easing) failures during moves, over its life.
  std::uint64_t clamped_count() const noexcept { return s_->clamped(); }
  std::uint64_t error_count() const noexcept { return s_->errors(); }

  /// Sends `angle` now (clamped to the limits, and then counted), ending a running move.
  /// Throws what the driver throws. Returns what was sent and what was asked.
  move_result set(double angle) {
    const double target = s_->clamp_target(angle, "set: the angle");
    s_->set_now(target);
    return {target, angle};
  }
  /// Sends the rest position now, ending a running move.
  void rest() { s_->set_now(rest_); }

  // --- Moves ----------------------------------------------------------------------------------

  /// Moves to `target` over `d` from now, with the servo's easing (or `e`). With a lead, the
  /// trajectory is sampled `lead` ahead and the move completes `lead` before its end. A `d`
  /// not longer than the lead sends the target at once. Throws std::invalid_argument at once
  /// for a non-finite target or a negative duration.
  template <class Rep, class Period, class CompletionToken>
  auto async_move_to(double target, std::chrono::duration<Rep, Period> d, easing e, CompletionToken&& token) {
    if (!(d >= d.zero())) throw std::invalid_argument("tactus::servo: a move's duration must be >= 0");
    const auto r = result_for(target);
    const auto dd = std::chrono::duration_cast<duration>(d);
    return asio::async_initiate<CompletionToken, void(std::error_code, move_result)>(
        [s = s_, r, dd, e = std::move(e)](auto handler) mutable {
          s->begin_op(std::move(handler), r);
          s->tween_for(r.target, dd, std::move(e));
        },
        token);
  }
  template <class Rep, class Period, class CompletionToken>
  auto async_move_to(double target, std::chrono::duration<Rep, Period> d, CompletionToken&& token) {
    return async_move_to(target, d, easing{}, std::forward<CompletionToken>(token));
  }

  /// Moves to `target` at `v` units per second (the duration follows from where it is now).
  template <class CompletionToken>
  auto async_move_to(double target, speed v, easing e, CompletionToken&& token) {
    if (!(v.per_second > 0) || !std::isfinite(v.per_second))
      throw std::invalid_argument("tactus::servo: a speed must be > 0 and finite");
    const auto r = result_for(target);
    const std::chrono::duration<double> d(std::abs(r.target - get()) / v.per_second);
    return async_move_to(target, std::chrono::duration_cast<duration>(d), std::move(e),
                         std::forward<CompletionToken>(token));
  }
  template <class CompletionToken>
  auto async_move_to(double target, speed v, CompletionToken&& token) {
    return async_move_to(target, v, easing{}, std::forward<CompletionToken>(token));
  }

  /// Moves to `target` over `length` beats of `m`, from the position now (from the tick being
  /// delivered, when called from one of m's callbacks), ending exactly at that position plus
  /// `length` (`lead` before it, with a lead). Each update's progress is m's position at that
  /// update (plus the lead), so tempo changes made while it runs are followed. While m is
  /// paused the servo holds still. On a metronome that is not running (or paused), the move
  /// starts when it runs. Throws std::invalid_argument for `length` <= 0.
  template <class CompletionToken>
  auto async_move_to(double target, metronome_type& m, beats length, easing e, CompletionToken&& token) {
    if (!(length > beats{0})) throw std::invalid_argument("tactus::servo: a move's length must be > 0 beats");
    const auto r = result_for(target);
    return asio::async_initiate<CompletionToken, void(std::error_code, move_result)>(
        [s = s_, r, &m, length, e = std::move(e)](auto handler) mutable {
          s->begin_op(std::move(handler), r);
          s->tween_beats(m, length, r.target, std::move(e));
        },
        token);
  }
  template <class CompletionToken>
  auto async_move_to(double target, metronome_type& m, beats length, CompletionToken&& token) {
    return async_move_to(target, m, length, easing{}, std::forward<CompletionToken>(token));
  }

  /// Holds still until position `from` of `m`, then moves to `target`, arriving at position
  /// `to`: both `lead` early, so that the servo is seen to leave on `from` and arrive on `to`.
  /// Back to back (`move_between(a, m, b, b + 4)` then `move_between(c, m, b + 4, b + 8)`) the
  /// moves join seamlessly. Throws std::invalid_argument unless from < to.
  template <class CompletionToken>
  auto async_move_between(double target, metronome_type& m, beats from, beats to, easing e, CompletionToken&& token) {
    if (!(from < to)) throw std::invalid_argument("tactus::servo: move_between needs from < to");
    const auto r = result_for(target);
    return asio::async_initiate<CompletionToken, void(std::error_code, move_result)>(
        [s = s_, r, &m, from, to, e = std::move(e)](auto handler) mutable {
          s->begin_op(std::move(handler), r);
          s->let_grid_go(m);
          sinks::detail::wait_position(
              m, from, s->lead(), s->wait_slot(),
              [s, id = s->op_id(), &m, from, to, r, e = std::move(e)](std::error_code ec) mutable {
                if (id != s->op_id()) return;
                if (ec) return s->end_op(ec);
                s->tween_between(m, from, to, r.target, std::move(e));
              });
        },
        token);
  }
  template <class CompletionToken>
  auto async_move_between(double target, metronome_type& m, beats from, beats to, CompletionToken&& token) {
    return async_move_between(target, m, from, to, easing{}, std::forward<CompletionToken>(token));
  }

  /// Coroutine shorthands: `co_await arm.move_to(90, 500ms);`, `co_await arm.move_to(30, m, beats{2});`
  template <class Rep, class Period>
  asio::awaitable<move_result> move_to(double target, std::chrono::duration<Rep, Period> d, easing e = {}) {
    return async_move_to(target, d, std::move(e), asio::use_awaitable);
  }
  asio::awaitable<move_result> move_to(double target, speed v, easing e = {}) {
    return async_move_to(target, v, std::move(e), asio::use_awaitable);
  }
  asio::awaitable<move_result> move_to(double target, metronome_type& m, beats length, easing e = {}) {
    return async_move_to(target, m, length, std::move(e), asio::use_awaitable);
  }
  asio::awaitable<move_result> move_between(double target, metronome_type& m, beats from, beats to, easing e = {}) {
    return async_move_between(target, m, from, to, std::move(e), asio::use_awaitable);
  }

 private:
  struct state final : sinks::detail::sink_core<Clock, move_result> {
    using base = sinks::detail::sink_core<Clock, move_result>;
    state(executor_type ex, sinks::detail::any_driver d, const servo_options& o)
        : base(std::move(ex), std::move(d), o.min, o.max,
               sinks::detail::period_of<duration>(o.rate_hz, "tactus::servo"), o.lead, o.ease, "tactus::servo") {}
    void value_from(double v) {  // the position assumed when none is sent at start
      this->set_assumed(v);
    }
  };

  const servo_options& check(const servo_options& o) {
    if (!std::isfinite(o.min) || !std::isfinite(o.max) || !(o.min < o.max))
      throw std::invalid_argument("tactus::servo: the limits must be finite, min < max");
    if (!(o.rest >= o.min && o.rest <= o.max))
      throw std::invalid_argument("tactus::servo: the rest position must lie within the limits");
    rest_ = o.rest;
    rest_at_close_ = o.rest_at_close;
    return o;
  }

  move_result result_for(double target) { return {s_->clamp_target(target, "a move's target"), target}; }

  double rest_ = 90;
  bool rest_at_close_ = true;
  std::shared_ptr<state> s_;
};

using servo = basic_servo<>;

}  // namespace tactus
