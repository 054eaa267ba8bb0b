// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/beats.hpp>
#include <tactus/metronome.hpp>
#include <tactus/sinks/detail/any_driver.hpp>
#include <tactus/sinks/detail/position_wait.hpp>
#include <tactus/sinks/detail/sink_core.hpp>
#include <tactus/sinks/easing.hpp>
#include <tactus/sinks/sink.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/basic_waitable_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <utility>

// An LED: on, off, toggle, a level from 0 to 1; blinks, fades, and flashes on the beat. On a
// driver that only switches (a GPIO line), levels between 0 and 1 are software PWM:
//
//   tactus::led lamp{io.get_executor(), std::ref(driver)};
//   co_await lamp.blink(3, 200ms);
//   co_await lamp.fade_to(0.5, 1s);
//   co_await lamp.flash_every(m, {.every = tactus::beats{4}, .length = tactus::beats{1, 10}, .count = 2});
//
// A new operation (or on, off, set) cancels the running one: latest wins.

namespace tactus {

/// An LED's behaviour.
struct led_options {
  /// Updates per second of a fade (1 to 1000 Hz); LEDs and servos of a rate share one timer.
  double rate_hz = 50;
  /// The software PWM frequency, for levels between 0 and 1 on a driver that only switches
  /// (10 to 10000 Hz). Its timer runs only while such a level is shown.
  double pwm_hz = 100;
  /// How long before a position the command must go out (the driver's delay). Default: the
  /// driver's lead_time(), if it declares one, else 0.
  std::optional<std::chrono::nanoseconds> lead{};
  /// The easing of fades that give none. Default: linear.
  easing ease{};
  /// Switch off at construction, and at destruction.
  bool off_at_start = true;
  bool off_at_close = true;
};

/// Flashes on a grid of a metronome: on at every `phase + k * every` (k whole) from the first at
/// or after now, for `length` each (0 < length < every), `count` times (0: until cancelled).
/// Every beat: `{.every = tactus::beats{1}}`; every bar of 4/4, off a tenth of a beat after the
/// downbeat: `{.every = tactus::beats{4}, .length = tactus::beats{1, 10}}`.
struct flash_pattern {
  beats every{1};
  beats length{1, 4};
  beats phase{0};
  std::int64_t count = 0;
};

/// An LED on `Clock`, driven by any sink (a level sink for 0..1, or a switch), owned (moved in)
/// or referred to (std::ref(driver)).
///
/// Every blink, fade and flash is an Asio asynchronous operation: any completion token,
/// signature void(std::error_code), completing on the handler's associated executor (default:
/// the LED's), never inside the initiating call. It completes without error when done; with
/// asio::error::operation_aborted when a newer operation (or on, off, toggle, set) replaced it,
/// when it was cancelled through its cancellation slot (any type), when the metronome it is
/// timed on stopped, or when the LED was destroyed; the LED then stays as it was. A driver that
/// throws ends it with the exception's std::error_code (sinks::errc::driver_failed for other
/// exceptions), counted in error_count(). The driver's set() runs on the executor's thread.
///
/// Thread-safe: no (call on the LED's executor). Realtime-safe: no. The io_context must outlive
/// the LED, and a metronome the flashes and fades timed on it.
template <class Clock = std::chrono::steady_clock>
class basic_led {
 public:
  using clock_type = Clock;
  using time_point = typename Clock::time_point;
  using duration = typename Clock::duration;
  using metronome_type = basic_metronome<Clock>;
  using executor_type = asio::any_io_executor;

  /// An LED on `driver`, switched off now (unless off_at_start is false). Throws
  /// std::invalid_argument for bad options, and what the driver's first set() throws.
  template <class Driver>
  basic_led(executor_type ex, Driver&& driver, led_options o = {})
      : s_(std::make_shared<state>(std::move(ex), sinks::detail::any_driver(std::forward<Driver>(driver)), o)),
        off_at_close_(o.off_at_close) {
    if (o.off_at_start) s_->send(0);
  }

  /// Ends the running operation (operation_aborted), switches off (unless off_at_close is
  /// false; an error there is ignored) and releases the driver.
  ~basic_led() {
    if (!s_) return;
    if (off_at_close_ && !s_->closed()) {
      try {
        s_->set_now(0);
      } catch (...) {
      }
    }
    s_->stop_pwm();
    s_->close();
  }
  basic_led(basic_led&&) noexcept = default;
  basic_led& operator=(basic_led&&) = delete;

  executor_type get_executor() const noexcept { return s_->executor(); }

  /// The level last set, 0 to 1 (a software-PWM level included).
  double level() const noexcept { return s_->value(); }
  bool is_on() const noexcept { return s_->value() > 0; }
  duration lead() const noexcept { return s_->lead(); }
  /// Whether a blink, fade or flash is running.
  bool busy() const noexcept { return s_->busy(); }
  /// Whether levels between 0 and 1 are shown by software PWM (a switch driver).
  bool software_pwm() const noexcept { return s_->switching(); }
  std::uint64_t clamped_count() const noexcept { return s_->clamped(); }
  std::uint64_t error_count() const noexcept { return s_->errors(); }

  /// Now, ending what runs. Throw what the driver throws.
  void on() { s_->set_now(1); }
  void off() { s_->set_now(0); }
  void toggle() { s_->set_now(is_on() ? 0 : 1); }
  /// A level from 0 to 1 (clamped, and then counted).
  void set(double level) { s_->set_now(s_->clamp_target(level, "set: the level")); }

  /// Blinks `n` times (n >= 1) from now: on for half a `period`, off for the other half,
  /// completing as the last one goes off. Times from its start, not from the previous blink.
  template <class Rep, class Period, class CompletionToken>
  auto async_blink(int n, std::chrono::duration<Rep, Period> period, CompletionToken&& token) {
    if (n < 1) throw std::invalid_argument("tactus::led: blink needs n >= 1");
    if (!(period > period.zero())) throw std::invalid_argument("tactus::led: blink needs a period > 0");
    const auto p = std::chrono::duration_cast<duration>(period);
    return asio::async_initiate<CompletionToken, void(std::error_code)>(
        [s = s_, n, p](auto handler) {
          s->begin_op(std::move(handler));
          s->start_blink(n, p);
        },
        token);
  }

  /// Fades to `level` over `d` from now (a tween at the LED's rate, as a servo's move).
  template <class Rep, class Period, class CompletionToken>
  auto async_fade_to(double level, std::chrono::duration<Rep, Period> d, easing e, CompletionToken&& token) {
    if (!(d >= d.zero())) throw std::invalid_argument("tactus::led: a fade's duration must be >= 0");
    const double target = s_->clamp_target(level, "a fade's level");
    const auto dd = std::chrono::duration_cast<duration>(d);
    return asio::async_initiate<CompletionToken, void(std::error_code)>(
        [s = s_, target, dd, e = std::move(e)](auto handler) mutable {
          s->begin_op(std::move(handler));
          s->tween_for(target, dd, std::move(e));
        },
        token);
  }
  template <class Rep, class Period, class CompletionToken>
  auto async_fade_to(double level, std::chrono::duration<Rep, Period> d, CompletionToken&& token) {
    return async_fade_to(level, d, easing{}, std::forward<CompletionToken>(token));
  }

  /// Fades to `level` over `length` beats of `m` (see servo::async_move_to with beats).
  template <class CompletionToken>
  auto async_fade_to(double level, metronome_type& m, beats length, easing e, CompletionToken&& token) {
    if (!(length > beats{0})) throw std::invalid_argument("tactus::led: a fade's length must be > 0 beats");
    const double target = s_->clamp_target(level, "a fade's level");
    return asio::async_initiate<CompletionToken, void(std::error_code)>(
        [s = s_, target, &m, length, e = std::move(e)](auto handler) mutable {
          s->begin_op(std::move(handler));
          s->tween_beats(m, length, target, std::move(e));
        },
        token);
  }
  template <class CompletionToken>
  auto async_fade_to(double level, metronome_type& m, beats length, CompletionToken&& token) {
    return async_fade_to(level, m, length, easing{}, std::forward<CompletionToken>(token));
  }

  /// On at position `at` of `m`, off at `at + length` (length > 0), both `lead` early so that
  /// the light is seen on the beat; completes when it goes off. A position already passed is
  /// played at once.
  template <class CompletionToken>
  auto async_flash(metronome_type& m, beats at, beats length, CompletionToken&& token) {
    if (!(length > beats{0})) throw std::invalid_argument("tactus::led: a flash's length must be > 0 beats");
    return asio::async_initiate<CompletionToken, void(std::error_code)>(
        [s = s_, &m, at, length](auto handler) {
          s->begin_op(std::move(handler));
          s->let_grid_go(m);
          s->flash(m, at, length, 1);
        },
        token);
  }

  /// Flashes on `pattern`'s grid of `m` (see flash_pattern), each flash as async_flash. With
  /// count 0 it ends only by cancellation (operation_aborted) or an error.
  template <class CompletionToken>
  auto async_flash_every(metronome_type& m, flash_pattern pattern, CompletionToken&& token) {
    if (!(pattern.every > beats{0}) || !(pattern.length > beats{0}) || !(pattern.length < pattern.every) ||
        pattern.count < 0)
      throw std::invalid_argument("tactus::led: a flash pattern needs 0 < length < every and count >= 0");
    return asio::async_initiate<CompletionToken, void(std::error_code)>(
        [s = s_, &m, pattern](auto handler) {
          s->begin_op(std::move(handler));
          s->start_flashes(m, pattern);
        },
        token);
  }

  /// Coroutine shorthands.
  template <class Rep, class Period>
  asio::awaitable<void> blink(int n, std::chrono::duration<Rep, Period> period) {
    return async_blink(n, period, asio::use_awaitable);
  }
  template <class Rep, class Period>
  asio::awaitable<void> fade_to(double level, std::chrono::duration<Rep, Period> d, easing e = {}) {
    return async_fade_to(level, d, std::move(e), asio::use_awaitable);
  }
  asio::awaitable<void> fade_to(double level, metronome_type& m, beats length, easing e = {}) {
    return async_fade_to(level, m, length, std::move(e), asio::use_awaitable);
  }
  asio::awaitable<void> flash(metronome_type& m, beats at, beats length) {
    return async_flash(m, at, length, asio::use_awaitable);
  }
  asio::awaitable<void> flash_every(metronome_type& m, flash_pattern pattern) {
    return async_flash_every(m, pattern, asio::use_awaitable);
  }

 private:
  struct state final : sinks::detail::sink_core<Clock> {
    using base = sinks::detail::sink_core<Clock>;

    state(executor_type ex, sinks::detail::any_driver d, const led_options& o)
        : base(std::move(ex), std::move(d), 0.0, 1.0, sinks::detail::period_of<duration>(o.rate_hz, "tactus::led"),
               o.lead, o.ease, "tactus::led"),
          timer_(this->executor()),
          pwm_timer_(this->executor()) {
      if (!(o.pwm_hz >= 10 && o.pwm_hz <= 10000))
        throw std::invalid_argument("tactus::led: the software PWM frequency must be from 10 to 10000 Hz");
      pwm_period_ = std::chrono::duration_cast<duration>(std::chrono::duration<double>(1.0 / o.pwm_hz));
    }

    bool switching() { return this->driver().switching(); }

    // --- blink: on at t0 + k * period, off half a period later ---

    void start_blink(int n, duration period) {
      t0_ = Clock::now();
      n_ = n;
      k_ = 0;
      period_ = period;
      if (!step(1)) return;
      arm(t0_ + period_ / 2, [](state& s) { s.blink_off(); });
    }
    void blink_off() {
      if (!step(0)) return;
      if (++k_ == n_) return this->end_op({});
      arm(t0_ + period_ * k_, [](state& s) { s.blink_on(); });
    }
    void blink_on() {
      if (!step(1)) return;
      arm(t0_ + period_ * k_ + period_ / 2, [](state& s) { s.blink_off(); });
    }

    // --- flashes: on at a position, off `length` later, `lead` early ---

    void flash(metronome_type& m, beats at, beats length, int) {
      when(m, at, [&m, at, length](state& s) {
        if (!s.step(1)) return;
        s.when(m, at + length, [](state& s2) {
          if (s2.step(0)) s2.end_op({});
        });
      });
    }
    // Once m runs (a wait of 0 beats, which also lets m's grid go on when this was started
    // from its callback): from the first grid position whose command can still go out on time.
    void start_flashes(metronome_type& m, flash_pattern p) {
      this->wait_start(m, this->op_slot(), [self = shared(), id = this->op_id(), &m, p](std::error_code ec, auto) {
        if (id != self->op_id()) return;
        self->rearm_op();
        if (ec) return self->end_op(ec);
        const beats from = m.position(Clock::now() + self->lead()) - p.phase;
        self->flash_every(m, p.phase + p.every * ceil_div(from, p.every), p, 0);
      });
      this->rearm_op();
    }
    void flash_every(metronome_type& m, beats at, flash_pattern p, std::int64_t done) {
      when(m, at, [&m, at, p, done](state& s) {
        if (!s.step(1)) return;
        s.when(m, at + p.length, [&m, at, p, done](state& s2) {
          if (!s2.step(0)) return;
          if (p.count != 0 && done + 1 == p.count) return s2.end_op({});
          s2.flash_every(m, at + p.every, p, done + 1);
        });
      });
    }

    // Sends a level for the running operation; false (and the operation failed) on an error.
    bool step(double level) {
      try {
        this->send(level);
        return true;
      } catch (...) {
        this->fail(this->code_of(std::current_exception()));
        return false;
      }
    }

    template <class F>
    void arm(time_point t, F f) {
      timer_.expires_at(t);
      timer_.async_wait([self = shared(), id = this->op_id(), f](std::error_code ec) {
        if (ec || id != self->op_id()) return;
        f(*self);
      });
    }

    template <class F>
    void when(metronome_type& m, beats p, F f) {
      sinks::detail::wait_position(m, p, this->lead(), this->wait_slot(),
                                   [self = shared(), id = this->op_id(), f](std::error_code ec) {
                                     if (id != self->op_id()) return;
                                     if (ec) return self->end_op(ec);
                                     f(*self);
                                   });
    }

    void on_op_end() override { timer_.cancel(); }

    // --- software PWM, for a switch driver: on at the start of each cycle, off after level ---

    void output(double v) override {
      if (!this->driver().switching()) return this->driver().set(v);
      if (v <= 0 || v >= 1) {
        stop_pwm();
        return this->driver().set_on(v >= 1);
      }
      pwm_level_ = v;
      if (!pwm_running_) start_pwm();
    }

    void start_pwm() {
      pwm_running_ = true;
      ++pwm_gen_;
      cycle_ = Clock::now();
      pwm_on_ = true;
      this->driver().set_on(true);
      arm_pwm(cycle_ + on_time());
    }
    void stop_pwm() noexcept {
      if (!pwm_running_) return;
      pwm_running_ = false;
      ++pwm_gen_;
      try {
        pwm_timer_.cancel();
      } catch (...) {
      }
    }
    duration on_time() const {
      return std::chrono::duration_cast<duration>(std::chrono::duration<double>(pwm_period_) * pwm_level_);
    }
    void arm_pwm(time_point t) {
      pwm_timer_.expires_at(t);
      pwm_timer_.async_wait([self = shared(), gen = pwm_gen_](std::error_code) {
        if (gen != self->pwm_gen_ || !self->pwm_running_) return;
        self->pwm_step();
      });
    }
    void pwm_step() {
      try {
        if (pwm_on_) {
          pwm_on_ = false;
          this->driver().set_on(false);
          arm_pwm(cycle_ + pwm_period_);
        } else {
          // From the cycle's anchor: a late wake skips whole cycles, it never drifts.
          const auto now = Clock::now();
          cycle_ += pwm_period_ * std::max<std::int64_t>(1, (now - cycle_) / pwm_period_);
          pwm_on_ = true;
          this->driver().set_on(true);
          arm_pwm(cycle_ + on_time());
        }
      } catch (...) {
        stop_pwm();
        if (this->busy()) this->fail(this->code_of(std::current_exception()));
        else this->count_error();
      }
    }

    std::shared_ptr<state> shared() { return std::static_pointer_cast<state>(this->shared_from_this()); }

    asio::basic_waitable_timer<Clock> timer_;
    time_point t0_{};
    duration period_{};
    int n_ = 0;
    int k_ = 0;
    asio::basic_waitable_timer<Clock> pwm_timer_;
    duration pwm_period_{};
    double pwm_level_ = 0;
    time_point cycle_{};
    std::uint64_t pwm_gen_ = 0;
    bool pwm_running_ = false;
    bool pwm_on_ = false;
  };

  std::shared_ptr<state> s_;
  bool off_at_close_ = true;
};

using led = basic_led<>;

}  // namespace tactus
