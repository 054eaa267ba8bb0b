// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/beats.hpp>
#include <tactus/metronome.hpp>
#include <tactus/sinks/detail/any_driver.hpp>
#include <tactus/sinks/detail/pending_op.hpp>
#include <tactus/sinks/detail/position_wait.hpp>
#include <tactus/sinks/detail/tween_batch.hpp>
#include <tactus/sinks/easing.hpp>
#include <tactus/sinks/error.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/error.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

// What a servo and an LED share: a driver, the last value sent, limits, a lead, and one
// operation at a time (latest wins), which may run a tween in its rate's batch: from the value
// it starts at to a target, over a time or between two positions of a metronome, sampled at
// (now + lead) at each grid point of the batch and ending exactly `lead` before its end.

namespace tactus::sinks::detail {

/// Checks a rate in Hz and turns it into the batch's period.
template <class Duration>
Duration period_of(double rate_hz, const char* who) {
  if (!(rate_hz >= 1 && rate_hz <= 1000))
    throw std::invalid_argument(std::string(who) + ": the update rate must be from 1 to 1000 Hz, got " +
                                std::to_string(rate_hz));
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(1.0 / rate_hz));
}

template <class Clock, class... Result>
class sink_core : public tween_batch<Clock>::member, public std::enable_shared_from_this<sink_core<Clock, Result...>> {
 public:
  using time_point = typename Clock::time_point;
  using duration = typename Clock::duration;
  using metronome_type = basic_metronome<Clock>;

  sink_core(asio::any_io_executor ex, any_driver driver, double lo, double hi, duration period,
            std::optional<std::chrono::nanoseconds> lead, easing ease, const char* who)
      : lo_(lo),
        hi_(hi),
        lead_(std::chrono::duration_cast<duration>(lead ? *lead : driver.lead().value_or(std::chrono::nanoseconds{}))),
        driver_(std::move(driver)),
        ex_(std::move(ex)),
        ease_(ease ? std::move(ease) : easing(ease::linear)),
        batch_(batch_for<Clock>(ex_, period)),
        who_(who) {
    if (lead_ < duration::zero()) throw std::invalid_argument(std::string(who) + ": the lead must be >= 0");
    this->set_prefetch_hint(driver_.address());
  }
  virtual ~sink_core() = default;

  const asio::any_io_executor& executor() const noexcept { return ex_; }
  double value() const noexcept { return value_; }
  double lo() const noexcept { return lo_; }
  double hi() const noexcept { return hi_; }
  duration lead() const noexcept { return lead_; }
  duration period() const noexcept { return batch_->period(); }
  bool busy() const noexcept { return op_.active(); }
  bool closed() const noexcept { return !driver_; }
  std::uint64_t clamped() const noexcept { return clamped_; }
  std::uint64_t errors() const noexcept { return errors_; }
  const tween_batch<Clock>& batch() const noexcept { return *batch_; }

  /// `v` within the limits; counts a value that was not.
  double clamp_target(double v, const char* what) {
    if (!std::isfinite(v)) throw std::invalid_argument(std::string(who_) + ": " + what + " must be finite");
    const double c = std::clamp(v, lo_, hi_);
    if (c != v) ++clamped_;
    return c;
  }

  /// Sends `v` now (it is within the limits), ending what runs (latest wins). Throws what the
  /// driver throws.
  void set_now(double v) {
    if (op_.active()) end_op(asio::error::operation_aborted);
    send(v);
  }

  // --- the current operation ---

  /// Begins an operation for `handler`, ending the one that runs with operation_aborted.
  template <class Handler>
  void begin_op(Handler&& handler, Result... result) {
    if (op_.active()) end_op(asio::error::operation_aborted);
    const auto id = ++op_id_;
    op_.start(
        std::forward<Handler>(handler), ex_,
        [this, id] {
          if (id == op_id_) end_op(asio::error::operation_aborted);
        },
        std::move(result)...);
  }

  /// Ends the current operation: its tween and waits stop, its handler gets `ec`.
  void end_op(std::error_code ec) {
    ++op_id_;
    batch_->remove(*this);
    wait_signal_.emit(asio::cancellation_type::terminal);
    on_op_end();
    op_.complete(ec);
  }

  /// A failure of the driver (or the easing) during an operation: counted, and the end of it.
  void fail(std::error_code ec) {
    ++errors_;
    end_op(ec);
  }
  /// A failure outside any operation (software PWM): counted only.
  void count_error() noexcept { ++errors_; }

  static std::error_code code_of(std::exception_ptr e) noexcept {
    try {
      std::rethrow_exception(e);
    } catch (const std::system_error& x) {
      return x.code();
    } catch (...) {
    }
    return errc::driver_failed;
  }

  /// The operation's handler's cancellation slot, and taking it back after a wait had it.
  asio::cancellation_slot op_slot() const noexcept { return op_.slot(); }
  void rearm_op() { op_.rearm(); }

  /// The current operation's id: a wait or timer started for it compares it when it completes.
  std::uint64_t op_id() const noexcept { return op_id_; }
  asio::cancellation_slot wait_slot() noexcept { return wait_signal_.slot(); }

  // --- tweens ---

  /// Tweens to `target` (within the limits) over `d` from now.
  void tween_for(double target, duration d, easing e) {
    const auto now = Clock::now();
    prepare(target, std::move(e));
    beats_mode_ = false;
    t0_ = now;
    t1_ = now + d;
    const auto end = t1_ - lead_;
    if (end <= now) return finish();
    batch_->add(*this, end);
  }

  /// Tweens to `target` from position `p0` (reached now) to `p1` of `m`.
  void tween_between(metronome_type& m, beats p0, beats p1, double target, easing e) {
    prepare(target, std::move(e));
    beats_mode_ = true;
    m_ = &m;
    p0_ = p0;
    p1_ = p1;
    batch_->add(*this, time_point::max());
    wait_position(m, p1, lead_, wait_slot(), [self = this->shared_from_this(), id = op_id_](std::error_code ec) {
      if (id != self->op_id_) return;
      if (ec) return self->end_op(ec);
      self->finish();
    });
  }

  /// Tweens to `target` over `length` beats of `m` from the position now (the tick being
  /// delivered, when called from one of m's callbacks).
  void tween_beats(metronome_type& m, beats length, double target, easing e) {
    // A wait for 0 beats completes at once with the metronome's own idea of "now": inside a
    // callback, the tick's exact position rather than a position a little past it.
    wait_start(m, op_.slot(),
               [self = this->shared_from_this(), id = op_id_, &m, length, target, e = std::move(e)](
                   std::error_code ec, auto moment) mutable {
                 if (id != self->op_id_) return;
                 self->op_.rearm();
                 if (ec) return self->end_op(ec);
                 self->tween_between(m, moment.position, moment.position + length, target, std::move(e));
               });
    op_.rearm();
  }

  /// Waits for "now" on `m`, handing it `slot`: a wait of 0 beats, completing at once on a
  /// running metronome (paused: at the pause's position), else at position 0, where run() starts.
  template <class Handler>
  static void wait_start(metronome_type& m, asio::cancellation_slot slot, Handler handler) {
    auto bound = asio::bind_cancellation_slot(slot, std::move(handler));
    if (m.running()) m.async_wait_after(beats{0}, on_pause::end, std::move(bound));
    else m.async_wait_until(beats{0}, on_pause::end, std::move(bound));
  }

  /// Shows `m` whose operation this is: one started (and awaited) from m's own callback then
  /// lets m's grid go on at once, as a wait on m itself does, instead of holding it until the
  /// operation ends. The metronome recognises its callback by the handler's cancellation slot,
  /// which a wait of 0 beats is handed for that; the operation takes its slot back at once.
  void let_grid_go(metronome_type& m) {
    if (!op_.slot().is_connected() || !m.running()) return;
    m.async_wait_after(
        beats{0}, on_pause::end,
        asio::bind_cancellation_slot(op_.slot(), [self = this->shared_from_this(), id = op_id_](std::error_code, auto) {
          if (id == self->op_id_) self->op_.rearm();
        }));
    op_.rearm();
  }

  /// Releases the driver after ending what runs. Idempotent.
  void close() noexcept {
    if (!driver_) return;
    if (op_.active() || batch_->contains(*this)) end_op(asio::error::operation_aborted);
    driver_.reset();
    this->set_prefetch_hint(nullptr);
  }

  /// The value assumed when none was sent yet.
  void set_assumed(double v) noexcept { value_ = v; }

  /// The last value sent, kept when the driver fails.
  void send(double v) {
    output(v);
    value_ = v;
  }

 protected:
  /// Sends a value to the driver (an LED on a switch overrides it: software PWM).
  virtual void output(double v) { driver_.set(v); }
  /// Called when an operation ends (an LED stops its timer).
  virtual void on_op_end() {}

  any_driver& driver() noexcept { return driver_; }
  const char* who() const noexcept { return who_; }

 private:
  void prepare(double target, easing e) {
    from_ = value_;
    to_ = target;
    tween_ease_ = e ? std::move(e) : ease_;
    // A plain function (every ease::*) is called directly in the batch, not through std::function.
    auto* fp = tween_ease_.template target<double (*)(double)>();
    ease_fn_ = fp ? *fp : nullptr;
  }

  double progress(time_point now) const {
    double x = 0;
    if (beats_mode_) {
      x = (m_->position(now + lead_) - p0_) / (p1_ - p0_);
    } else {
      using secs = std::chrono::duration<double>;
      x = secs(now + lead_ - t0_) / secs(t1_ - t0_);
    }
    return std::clamp(x, 0.0, 1.0);
  }

  void tween_update(time_point now) override {
    if (beats_mode_ && m_->paused()) return;  // holds still while the music is stopped
    const double x = progress(now);
    if (x >= 1) return;  // the end sends the target
    const double v = from_ + (to_ - from_) * (ease_fn_ ? ease_fn_(x) : tween_ease_(x));
    if (!std::isfinite(v)) return fail(errc::bad_easing);
    try {
      send(std::clamp(v, lo_, hi_));  // an easing that overshoots stays within the limits
    } catch (...) {
      fail(code_of(std::current_exception()));
    }
  }

  void tween_end(time_point) override { finish(); }

  void finish() {
    try {
      send(to_);
    } catch (...) {
      return fail(code_of(std::current_exception()));
    }
    end_op({});
  }

  // What every update touches, together: the tween, the limits, the driver.
  double from_ = 0;
  double to_ = 0;
  double (*ease_fn_)(double) = nullptr;
  time_point t0_{};
  time_point t1_{};
  bool beats_mode_ = false;
  double lo_;
  double hi_;
  double value_ = 0;
  duration lead_;
  any_driver driver_;
  // The rest.
  asio::any_io_executor ex_;
  easing ease_;
  std::shared_ptr<tween_batch<Clock>> batch_;
  const char* who_;
  pending_op<Result...> op_;
  std::uint64_t op_id_ = 0;
  asio::cancellation_signal wait_signal_;
  std::uint64_t clamped_ = 0;
  std::uint64_t errors_ = 0;
  // the tween's other parts
  easing tween_ease_;
  metronome_type* m_ = nullptr;
  beats p0_{};
  beats p1_{};
};

}  // namespace tactus::sinks::detail
