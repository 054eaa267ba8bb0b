// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/beat.hpp>
#include <tactus/detail/beat_waiters.hpp>
#include <tactus/tempo.hpp>
#include <tactus/timeline.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/basic_waitable_timer.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/redirect_error.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <type_traits>

// The metronome: a coroutine that wakes on every grid point of a tempo timeline and awaits the
// user's callbacks there, drift-free because every deadline is computed from the timeline's
// anchor and waited for with expires_at on an absolute time.
//
//     tactus::metronome m{io.get_executor(), tactus::bpm{120}, tactus::meter{4}};
//     m.on_beat([](const tactus::beat& b) { std::cout << b.bar << ':' << b.beat_in_bar << '\n'; });
//     asio::co_spawn(io, m.run(), rethrow);      // until m.stop() or cancellation
//     ...
//     co_await m.async_wait_bar(asio::use_awaitable);   // any coroutine: resume on the next bar
//
// Internal tempo by default; an external source (MIDI clock follower, Link) drives the same
// metronome through sync()/relocate()/pause()/resume(), so application code is the same.

namespace tactus {

/// A metronome on `Clock` (std::chrono::steady_clock, or testing::manual_clock for virtual time).
///
/// Thread-safe: no. Every member is called on the metronome's executor (use a strand, or
/// asio::post to it from other threads). Realtime-safe: no (it is a coroutine on Asio).
template <class Clock = std::chrono::steady_clock>
class basic_metronome {
 public:
  using clock_type = Clock;
  using time_point = typename Clock::time_point;
  using duration = typename Clock::duration;
  using timeline_type = basic_timeline<Clock>;
  using beat_type = basic_beat<Clock>;
  using executor_type = asio::any_io_executor;
  using error_handler = std::function<void(std::exception_ptr, const beat_type&)>;
  using callback_id = std::size_t;

  /// Where and when run() starts.
  struct start_options {
    /// Start on the first multiple of `quantum` beats (measured at the initial tempo from
    /// `origin`) at or after the moment run() begins; 0 starts at once.
    beats quantum{0};
    time_point origin{};
    /// Start paused: no grid point fires until resume() (for external clocks awaiting START).
    bool paused = false;
  };

  /// A metronome at `tempo`, `m` beats per bar, `s` ticks per beat. Nothing runs until run().
  basic_metronome(executor_type ex, bpm tempo, meter m = meter{}, subdivision s = subdivision{})
      : ex_(std::move(ex)), timer_(ex_), timeline_(tempo, time_point{}), meter_(m), sub_(s) {}

  basic_metronome(const basic_metronome&) = delete;
  basic_metronome& operator=(const basic_metronome&) = delete;

  executor_type get_executor() const noexcept { return ex_; }

  /// Registers `f`, called on every grid point with `const beat_type&`, in registration order.
  /// `f` returns void, or asio::awaitable<void>: the metronome awaits it before moving on
  /// (a callback that overruns the next grid point triggers the overrun policy). An exception
  /// from `f` goes to the error handler; the metronome carries on. May be called from a callback.
  template <class F>
  callback_id on_beat(F f) {
    using result = std::invoke_result_t<F&, const beat_type&>;
    callback cb;
    if constexpr (std::is_void_v<result>) {
      cb.sync = std::move(f);
    } else {
      static_assert(std::is_same_v<result, asio::awaitable<void>>,
                    "tactus: an on_beat callback returns void or asio::awaitable<void>");
      cb.async = std::move(f);
    }
    callbacks_.push_back(std::move(cb));
    return callbacks_.size() - 1;
  }

  /// Unregisters a callback; from the next grid point on it is no longer called.
  void remove(callback_id id) {
    if (id < callbacks_.size()) callbacks_[id] = callback{};
  }

  /// Where exceptions from callbacks go. Default: a line on stderr.
  void set_error_handler(error_handler h) { on_error_ = std::move(h); }
  void set_overrun_policy(overrun_policy p) noexcept { policy_ = p; }
  /// Under the skip policy, a grid point is skipped when the metronome wakes later than this
  /// fraction of a tick after it (default 0.25): it is not played late, the next one is on time.
  /// On very fast grids (ticks of a few ms) the OS's wake-up noise alone can pass a quarter
  /// tick: raise the fraction, or use overrun_policy::catch_up, there.
  void set_skip_threshold(double fraction_of_tick) noexcept { skip_threshold_ = fraction_of_tick; }
  /// A delivered grid point counts as late when it woke more than this after its time (default 1 ms).
  void set_late_threshold(duration d) noexcept { late_threshold_ = d; }

  /// The metronome coroutine: co_spawn it on the executor. Returns when stop() is called or
  /// when the coroutine is cancelled through its cancellation slot (terminal; both cleanly,
  /// without throwing); pending async waits then complete with asio::error::operation_aborted.
  /// Either way a callback that is awaiting something is cancelled too (its operation completes
  /// with operation_aborted; the resulting exception is not reported), and the callbacks of
  /// that grid point not yet called are not called. Throws std::logic_error if already running.
  asio::awaitable<void> run() { return run(start_options{}); }
  asio::awaitable<void> run(start_options options) {
    if (running_) throw std::logic_error("tactus::metronome: run() while already running");
    running_ = true;
    stop_requested_ = false;
    cancelled_ = false;
    struct on_exit {
      basic_metronome* self;
      asio::cancellation_slot outer;
      ~on_exit() {
        if (outer.is_connected()) outer.clear();
        self->cancel_.slot().clear();
        self->running_ = false;
        self->waiters_.complete_all(asio::error::operation_aborted, beat_type{});
      }
    };
    // The grid loop runs as a child coroutine whose cancellation slot is our own signal, so that
    // stop() can cancel whatever it awaits, a callback's operation included (a callback awaited
    // inline shares the loop's cancellation state). This coroutine's own cancellation is
    // forwarded to that signal.
    auto state = co_await asio::this_coro::cancellation_state;
    on_exit guard{this, state.slot()};
    if (guard.outer.is_connected())
      guard.outer.assign([this](asio::cancellation_type type) {
        if ((type & asio::cancellation_type::terminal) != asio::cancellation_type::none) cancelled_ = true;
        cancel_.emit(type);
      });
    co_await asio::co_spawn(ex_, grid_loop(options), asio::bind_cancellation_slot(cancel_.slot(), asio::use_awaitable));
  }

  /// Asks run() to return: before the next grid point, or at once from a callback (a callback
  /// awaiting something is cancelled; see run()).
  void stop() {
    stop_requested_ = true;
    timer_.cancel();
    if (running_) cancel_.emit(asio::cancellation_type::terminal);
  }

  /// Changes the tempo. Inside a callback, the current grid point stays where it was and the
  /// next one falls a new tick period after it; between grid points, the beat position is
  /// continuous from this instant. With tempo_change::next_bar, the change takes effect at
  /// the next bar line instead. Works before run() too (sets the starting tempo).
  void set_tempo(bpm tempo, tempo_change when = tempo_change::now) {
    if (!running_) {
      timeline_ = timeline_type(tempo, timeline_.anchor_time(), timeline_.anchor_beat());
      return;
    }
    if (when == tempo_change::next_bar) {
      const double from = (in_callback_ ? current_.position.count() + 1e-9 : tick_position(next_tick_).count() - 1e-9);
      const double bar = meter_.beats_per_bar();
      pending_ = pending_tempo{tempo, beats(std::ceil(from / bar) * bar)};
      retime();
      return;
    }
    pending_.reset();
    timeline_ = in_callback_ ? timeline_.with_tempo_at_beat(tempo, current_.position)
                             : timeline_.with_tempo(tempo, Clock::now());
    retime();
  }

  /// The tempo in force now (a pending next-bar change is not yet in force).
  bpm tempo() const noexcept { return timeline_.tempo(); }
  /// The timeline the metronome schedules from.
  const timeline_type& timeline() const noexcept { return timeline_; }
  meter time_signature() const noexcept { return meter_; }
  subdivision ticks() const noexcept { return sub_; }
  /// The beat position at time `t` (default now) on the current timeline.
  beats position(time_point t = Clock::now()) const noexcept { return timeline_.beat_at(t); }
  /// When the next grid point is due (time_point::max() when paused or not running).
  time_point next_deadline() const noexcept {
    if (!running_ || paused_) return time_point::max();
    const auto p = tick_position(next_tick_);
    if (pending_ && p.count() >= pending_->at.count() - 1e-9)
      return timeline_.with_tempo_at_beat(pending_->tempo, pending_->at).time_at(p);
    return timeline_.time_at(p);
  }
  bool running() const noexcept { return running_; }
  bool paused() const noexcept { return paused_; }

  /// Grid points delivered, delivered late (see set_late_threshold), and skipped, over the
  /// metronome's life.
  std::int64_t delivered_count() const noexcept { return delivered_; }
  std::int64_t late_count() const noexcept { return late_; }
  std::int64_t skipped_count() const noexcept { return skipped_; }

  // --- External sources: a MIDI clock follower or Link drives the same metronome. -----------

  /// Adopts an external timeline (tempo and phase) without moving the grid position: the next
  /// grid point to fire stays the same one, now due at its time on `t`.
  void sync(const timeline_type& t) {
    pending_.reset();
    timeline_ = t;
    retime();
  }

  /// Adopts `t` and moves to its position: the next grid point is the first at or after `from`
  /// on `t` (song position pointer, START, CONTINUE). Grid points in between are not played.
  /// `from` may lie in the past (the timestamp of the MIDI clock pulse that caused the jump):
  /// the grid point there is then delivered at once, late by the time it took to get here.
  void relocate(const timeline_type& t, time_point from = Clock::now()) {
    pending_.reset();
    timeline_ = t;
    next_tick_ = first_tick_at_or_after(from);
    retime();
  }

  /// Stops delivering grid points until resume(); run() keeps running. Pending waits stay.
  void pause() {
    paused_ = true;
    retime();
  }
  /// Delivers again from the first grid point at or after `from` (default now; see relocate).
  void resume(time_point from = Clock::now()) {
    if (!paused_) return;
    paused_ = false;
    next_tick_ = first_tick_at_or_after(from);
    retime();
  }

  // --- Awaitable scheduling for any coroutine (TempoClock's sched, aalink's sync) ----------

  /// Waits for the next grid point (tick). Completion signature void(std::error_code, beat_type):
  /// the handler runs on its associated executor after the callbacks of that grid point.
  /// Cancellable through the handler's cancellation slot (completes with operation_aborted);
  /// completes with operation_aborted when run() returns.
  template <class CompletionToken>
  auto async_wait_tick(CompletionToken&& token) {
    return async_wait(detail::wait_kind::tick, beats{}, std::forward<CompletionToken>(token));
  }
  /// Waits for the next beat (the first tick of a beat). As async_wait_tick otherwise.
  template <class CompletionToken>
  auto async_wait_beat(CompletionToken&& token) {
    return async_wait(detail::wait_kind::beat, beats{}, std::forward<CompletionToken>(token));
  }
  /// Waits for the next bar line. As async_wait_tick otherwise.
  template <class CompletionToken>
  auto async_wait_bar(CompletionToken&& token) {
    return async_wait(detail::wait_kind::bar, beats{}, std::forward<CompletionToken>(token));
  }
  /// Waits for the first grid point at or after beat position `p` (immediately-next if `p` has
  /// passed). As async_wait_tick otherwise.
  template <class CompletionToken>
  auto async_wait_until(beats p, CompletionToken&& token) {
    return async_wait(detail::wait_kind::position, p, std::forward<CompletionToken>(token));
  }

  /// Coroutine shorthands: `auto b = co_await m.next_beat();`
  asio::awaitable<beat_type> next_tick() { return async_wait_tick(asio::use_awaitable); }
  asio::awaitable<beat_type> next_beat() { return async_wait_beat(asio::use_awaitable); }
  asio::awaitable<beat_type> next_bar() { return async_wait_bar(asio::use_awaitable); }
  asio::awaitable<beat_type> at(beats p) { return async_wait_until(p, asio::use_awaitable); }

 private:
  struct callback {
    std::function<void(const beat_type&)> sync;
    std::function<asio::awaitable<void>(const beat_type&)> async;
  };
  struct pending_tempo {
    bpm tempo;
    beats at;
  };

  template <class CompletionToken>
  auto async_wait(detail::wait_kind kind, beats p, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(std::error_code, beat_type)>(
        [this](auto handler, detail::wait_kind k, beats target) {
          waiters_.add(std::move(handler), ex_, detail::wait_target{k, target});
        },
        token, kind, p);
  }

  // The grid: wakes on each grid point (absolute deadlines from the timeline) and delivers it.
  asio::awaitable<void> grid_loop(start_options options) {
    const auto now = Clock::now();
    auto start = now;
    if (options.quantum > beats{0}) {
      const timeline_type grid(timeline_.tempo(), options.origin);
      start = grid.time_at(grid.next_multiple(now, options.quantum));
    }
    timeline_ = timeline_type(timeline_.tempo(), start, beats{0});
    pending_.reset();
    next_tick_ = 0;
    index_ = 0;
    paused_ = options.paused;
    std::int64_t skipped_run = 0;
    bool skipped_this_wake = false;  // skip at most once per wake-up: the loop always progresses
    // A handle on this coroutine's cancellation state: cancelled() reads it live.
    const auto cancel_state = co_await asio::this_coro::cancellation_state;

    for (;;) {
      if (stop_requested_) co_return;
      if (cancel_state.cancelled() != asio::cancellation_type::none) co_return;
      const auto deadline = paused_ ? time_point::max() : deadline_of(next_tick_);
      if (paused_ || Clock::now() < deadline) {
        timer_.expires_at(deadline);
        std::error_code ec;
        co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        skipped_this_wake = false;
        continue;  // woken, re-timed by a tempo change, stopped or cancelled: look again
      }
      const auto fired = Clock::now();
      // Skipping moves to the first grid point at or after `fired`; if the clock has moved past
      // that one too by the next look (ticks shorter than this loop on a slow machine), it is
      // delivered late rather than skipped again, so the loop never spins without delivering.
      if (policy_ == overrun_policy::skip && !skipped_this_wake && fired - deadline > skip_after()) {
        skipped_this_wake = true;
        const auto first_due = first_tick_at_or_after(fired);
        skipped_run += first_due - next_tick_;
        skipped_ += first_due - next_tick_;
        index_ += first_due - next_tick_;
        next_tick_ = first_due;
        continue;
      }
      co_await deliver(make_beat(next_tick_, deadline, fired, skipped_run));
      skipped_run = 0;
      skipped_this_wake = false;
      ++next_tick_;
      ++index_;
    }
  }

  beats tick_position(std::int64_t tick) const noexcept {
    return beats(static_cast<double>(tick) / sub_.ticks_per_beat());
  }

  // A pending next-bar tempo change takes effect once the grid reaches it.
  void apply_pending(std::int64_t tick) {
    if (pending_ && tick_position(tick).count() >= pending_->at.count() - 1e-9) {
      timeline_ = timeline_.with_tempo_at_beat(pending_->tempo, pending_->at);
      pending_.reset();
    }
  }

  time_point deadline_of(std::int64_t tick) {
    apply_pending(tick);
    return timeline_.time_at(tick_position(tick));
  }

  std::int64_t first_tick_at_or_after(time_point t) {
    auto k = std::llround(timeline_.next_tick(t, sub_).count() * sub_.ticks_per_beat());
    if (pending_ && tick_position(k) >= pending_->at) {
      apply_pending(k);
      k = std::llround(timeline_.next_tick(t, sub_).count() * sub_.ticks_per_beat());
    }
    return k;
  }

  duration skip_after() const noexcept {
    return std::chrono::duration_cast<duration>(timeline_.tempo().period() * (skip_threshold_ / sub_.ticks_per_beat()));
  }

  void retime() {
    if (running_) timer_.cancel();
  }

  beat_type make_beat(std::int64_t tick, time_point scheduled, time_point fired, std::int64_t skipped) const {
    const int tpb = sub_.ticks_per_beat();
    const auto whole_beats = tick >= 0 ? tick / tpb : -((-tick + tpb - 1) / tpb);
    const int bpb = meter_.beats_per_bar();
    beat_type b;
    b.index = index_;
    b.position = tick_position(tick);
    b.tick = static_cast<int>(tick - whole_beats * tpb);
    b.bar = whole_beats >= 0 ? whole_beats / bpb : -((-whole_beats + bpb - 1) / bpb);
    b.beat_in_bar = static_cast<int>(whole_beats - b.bar * bpb);
    b.scheduled = scheduled;
    b.fired = fired;
    b.skipped = skipped;
    b.tempo = timeline_.tempo();
    return b;
  }

  asio::awaitable<void> deliver(beat_type b) {
    ++delivered_;
    if (b.fired - b.scheduled > late_threshold_) ++late_;
    current_ = b;
    in_callback_ = true;
    // Index, not iterators: a callback may register another (deque keeps references valid).
    for (std::size_t i = 0; i < callbacks_.size() && !ending(); ++i) {
      try {
        if (callbacks_[i].sync) callbacks_[i].sync(b);
        else if (callbacks_[i].async) co_await callbacks_[i].async(b);
      } catch (...) {
        if (!ending() || !is_abort(std::current_exception())) report(std::current_exception(), b);
      }
    }
    in_callback_ = false;
    waiters_.complete_if([&b](const detail::wait_target& t) { return t.matches(b); }, b);
  }

  // stop() or the cancellation of run(): no further callback, and the abort it causes in an
  // awaiting callback is not an error.
  bool ending() const noexcept { return stop_requested_ || cancelled_; }
  static bool is_abort(std::exception_ptr e) noexcept {
    try {
      std::rethrow_exception(e);
    } catch (const std::system_error& x) {
      return x.code() == asio::error::operation_aborted;
    } catch (...) {
    }
    return false;
  }

  void report(std::exception_ptr e, const beat_type& b) noexcept {
    try {
      if (on_error_) return on_error_(e, b);
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      std::cerr << "tactus: a beat callback threw at bar " << b.bar << " beat " << b.beat_in_bar << ": " << x.what()
                << '\n';
    } catch (...) {
      std::cerr << "tactus: a beat callback threw at bar " << b.bar << " beat " << b.beat_in_bar << '\n';
    }
  }

  executor_type ex_;
  asio::basic_waitable_timer<Clock> timer_;
  asio::cancellation_signal cancel_;  // the grid loop's cancellation slot (see run())
  timeline_type timeline_;
  meter meter_;
  subdivision sub_;
  std::optional<pending_tempo> pending_;
  std::deque<callback> callbacks_;
  detail::beat_waiters<Clock> waiters_;
  error_handler on_error_;
  overrun_policy policy_ = overrun_policy::skip;
  double skip_threshold_ = 0.25;
  duration late_threshold_ = std::chrono::duration_cast<duration>(std::chrono::milliseconds(1));
  beat_type current_{};
  std::int64_t next_tick_ = 0;
  std::int64_t index_ = 0;
  std::int64_t delivered_ = 0;
  std::int64_t late_ = 0;
  std::int64_t skipped_ = 0;
  bool running_ = false;
  bool stop_requested_ = false;
  bool cancelled_ = false;  // run() was cancelled through its slot
  bool paused_ = false;
  bool in_callback_ = false;
};

using metronome = basic_metronome<>;

}  // namespace tactus
