// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/beats.hpp>
#include <tactus/detail/asio_compat.hpp>
#include <tactus/detail/grid_waiters.hpp>
#include <tactus/detail/is_cancellation.hpp>
#include <tactus/detail/waiter_list.hpp>
#include <tactus/meter.hpp>
#include <tactus/moment.hpp>
#include <tactus/rethrow.hpp>
#include <tactus/tempo.hpp>
#include <tactus/tick.hpp>
#include <tactus/timeline.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/basic_waitable_timer.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/post.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <type_traits>
#include <vector>

// The metronome: a coroutine that wakes on every tick of a tempo timeline and awaits the user's
// callbacks there, drift-free because every deadline is computed from the timeline's anchor and
// waited for with expires_at on an absolute time. Any coroutine can also wait for a tick, a beat,
// a bar, or any exact position between them.
//
//     tactus::metronome m{io.get_executor(), tactus::bpm{120}, tactus::meter{4}};
//     m.on_beat([](const tactus::tick& t) { std::cout << t.bar << ':' << t.beat_in_bar << '\n'; });
//     asio::co_spawn(io, m.run(), tactus::rethrow);       // until m.stop() or cancellation
//     ...
//     co_await m.next_bar();                      // any coroutine: resume on the next bar line
//     co_await m.after(tactus::beats{1, 3});      // exactly a triplet eighth later
//
// Internal tempo by default; an external source (MIDI clock follower, Link) drives the same
// metronome through sync()/relocate()/pause()/resume(), so application code is the same.

namespace tactus {

/// What a metronome does when it wakes later than a tick (callbacks that overran, a stalled
/// executor, a suspended laptop).
enum class overrun_policy {
  /// Drop the missed ticks and resume on the grid: no burst, no drift. The next tick delivered
  /// reports how many were skipped. The default.
  skip,
  /// Deliver every missed tick, late and back to back, then carry on.
  catch_up,
};

/// When set_tempo takes effect.
enum class tempo_change {
  /// From the current tick (inside a callback) or from this instant (between ticks).
  now,
  /// From the next bar line.
  next_bar,
};

/// What a position wait does when the metronome pauses (a MIDI STOP, a lost clock) before its
/// position is reached.
enum class on_pause {
  /// Keep waiting: the position is reached after resume() (a swung step, a cue in the song).
  hold,
  /// Complete at once, without error, with the moment of the pause (its position is short of
  /// the one waited for): what a sounding note wants, so that STOP silences it.
  end,
};

/// A metronome on `Clock` (std::chrono::steady_clock, or testing::manual_clock for virtual time).
///
/// Its state is shared with the coroutines it runs, so it may be destroyed at any time, run()
/// suspended or not, before or after its io_context: destruction stops it (as stop()), and a
/// suspended run() then returns without touching it, or is destroyed with its io_context.
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
  using tick_type = basic_tick<Clock>;
  using moment_type = basic_moment<Clock>;
  using executor_type = asio::any_io_executor;
  using error_handler = std::function<void(std::exception_ptr, const tick_type&)>;
  using callback_id = std::size_t;

  /// Where and when run() starts.
  struct start_options {
    /// Start on the first multiple of `quantum` beats (measured at the initial tempo from
    /// `origin`) at or after the moment run() begins; 0 starts at once.
    beats quantum{0};
    time_point origin{};
    /// Start paused: no tick fires until resume() (for external clocks awaiting START).
    bool paused = false;
  };

  /// A metronome at `tempo`, `m` beats per bar, `s` ticks per beat. Nothing runs until run().
  basic_metronome(executor_type ex, bpm tempo, tactus::meter m = tactus::meter{},
                  tactus::subdivision s = tactus::subdivision{})
      : s_(std::make_shared<state>(std::move(ex), tempo, m, s)) {}

  /// Stops the metronome (see stop()); safe while run() is suspended (see the class comment).
  ~basic_metronome() { s_->shut_down(); }

  basic_metronome(const basic_metronome&) = delete;
  basic_metronome& operator=(const basic_metronome&) = delete;

  executor_type get_executor() const noexcept { return s_->ex_; }

  // --- Callbacks -------------------------------------------------------------------------------

  /// Registers `f`, called on every tick (every grid point: each beat when not subdivided, each
  /// sixteenth with subdivision{4}) with `const tick_type&`, in registration order among all
  /// callbacks. `f` returns void, or asio::awaitable<void>: the metronome awaits it before moving
  /// on (one that overruns the next tick triggers the overrun policy), until it completes or
  /// until it awaits this metronome itself (a tick, a beat, a bar or a position, with
  /// use_awaitable): from then on it runs beside the grid, which moves on. So a callback may
  /// play a note half a beat long (`co_await m.after(beats{0.5})`) without holding the grid.
  /// An exception from `f` goes to the error handler; the metronome carries on. May be called
  /// from a callback. Returns an id for remove().
  template <class F>
  callback_id on_tick(F f) {
    return add_callback(std::move(f), detail::grid_wait::tick);
  }
  /// As on_tick, but called only on the first tick of each beat.
  template <class F>
  callback_id on_beat(F f) {
    return add_callback(std::move(f), detail::grid_wait::beat);
  }
  /// As on_tick, but called only on the first tick of each bar (the downbeat).
  template <class F>
  callback_id on_bar(F f) {
    return add_callback(std::move(f), detail::grid_wait::bar);
  }

  /// Unregisters a callback; from the next tick on it is no longer called (a call in progress
  /// finishes).
  void remove(callback_id id) {
    if (id < s_->callbacks_.size()) s_->callbacks_[id].reset();
  }

  /// Where exceptions from callbacks go. Default: a line on stderr.
  void set_error_handler(error_handler h) { s_->on_error_ = std::move(h); }
  void set_overrun_policy(overrun_policy p) noexcept { s_->policy_ = p; }
  /// Under the skip policy, a tick is skipped when the metronome wakes later than this fraction
  /// of a tick after it (default 0.25): it is not played late, the next one is on time. On very
  /// fast grids (ticks of a few ms) the OS's wake-up noise alone can pass a quarter tick: raise
  /// the fraction, or use overrun_policy::catch_up, there.
  void set_skip_threshold(double fraction_of_tick) noexcept { s_->skip_threshold_ = fraction_of_tick; }
  /// A delivered tick counts as late when it woke more than this after its time (default 1 ms).
  void set_late_threshold(duration d) noexcept { s_->late_threshold_ = d; }

  // --- Running ---------------------------------------------------------------------------------

  /// The metronome coroutine: co_spawn it on the executor. Returns when stop() is called, the
  /// metronome is destroyed, or the coroutine is cancelled through its cancellation slot
  /// (terminal cancellation; all three without throwing). It returns at once: it does not wait
  /// for an async callback that is awaiting something. That callback is cancelled (what it
  /// awaits completes with operation_aborted, and the resulting exception is not reported); an
  /// operation that ignores cancellation (a blocking job on a thread pool) finishes unobserved,
  /// and the callback's next co_await throws operation_aborted. The callbacks of that tick not
  /// yet called are not called. Every pending wait completes with operation_aborted.
  /// Throws std::logic_error if already running.
  asio::awaitable<void> run() { return run(start_options{}); }
  asio::awaitable<void> run(start_options options) {
    auto s = s_;  // this coroutine's own reference: see the class comment
    if (s->running_) throw std::logic_error("tactus::metronome: run() while already running");
    s->begin(options);
    // An io_context destroyed with this coroutine suspended destroys its frame: then nothing
    // but our own state may be touched (the timers' service and the callbacks' frames are going).
    struct on_exit {
      std::shared_ptr<state> s;
      bool returned = false;
      ~on_exit() {
        if (returned) s->end();
        else s->running_ = false;
      }
    } guard{s};
    // Whichever ends first cancels the other: the grid loop (cancelled by the cancellation of
    // run(), which the operator forwards to both) or stop()'s message. The loop awaits a
    // callback through an event that is cancelled at once, so this never waits for a callback.
    using namespace detail::awaitable_operators;
    try {
      co_await (grid_loop(s) || s->stop_.async_receive(asio::use_awaitable));
    } catch (...) {
      guard.returned = true;
      throw;
    }
    guard.returned = true;
  }

  /// Asks run() to return, at once (see run()). Pending waits complete with operation_aborted.
  void stop() { s_->stop(); }

  /// Changes the tempo. Inside a callback, the current tick stays where it was and the next one
  /// falls a new tick period after it; between ticks, the beat position is continuous from this
  /// instant. With tempo_change::next_bar, the change takes effect at the next bar line instead,
  /// exactly there. Works before run() too (sets the starting tempo). Pending position waits
  /// follow: they wait for their position, not for a time.
  void set_tempo(bpm tempo, tempo_change when = tempo_change::now) { s_->set_tempo(tempo, when); }

  /// The tempo in force now (a pending next-bar change is not yet in force).
  bpm tempo() const noexcept { return s_->timeline_.tempo(); }
  /// The timeline the metronome schedules from.
  const timeline_type& timeline() const noexcept { return s_->timeline_; }
  /// Beats per bar.
  tactus::meter meter() const noexcept { return s_->meter_; }
  /// Ticks per beat.
  tactus::subdivision subdivision() const noexcept { return s_->sub_; }
  /// The beat position at time `t` (default now), a pending next-bar tempo change included.
  beats position(time_point t = Clock::now()) const noexcept { return s_->position_at(t); }
  /// The position waits count from: the tick being delivered inside a callback, else the position
  /// now (what async_wait_after adds its length to).
  beats current_position() const noexcept { return s_->current_position(); }
  /// The time of position `p` on the current timeline, a pending next-bar change included.
  time_point time_at(beats p) const noexcept { return s_->time_of(p); }
  /// When the next tick is due (time_point::max() when paused or not running).
  time_point next_deadline() const noexcept {
    if (!s_->running_ || s_->paused_) return time_point::max();
    return s_->time_of(s_->tick_position(s_->next_tick_));
  }
  bool running() const noexcept { return s_->running_; }
  bool paused() const noexcept { return s_->paused_; }

  /// Ticks delivered, delivered late (see set_late_threshold), and skipped, over the metronome's
  /// life.
  std::int64_t delivered_count() const noexcept { return s_->delivered_; }
  std::int64_t late_count() const noexcept { return s_->late_; }
  std::int64_t skipped_count() const noexcept { return s_->skipped_; }

  // --- External sources: a MIDI clock follower or Link drives the same metronome. -----------

  /// Adopts an external timeline (tempo and phase) without moving the grid position: the next
  /// tick to fire stays the same one, now due at its time on `t`.
  void sync(const timeline_type& t) {
    s_->pending_.reset();
    s_->timeline_ = t;
    s_->applied_.reset();
    s_->retime();
  }

  /// Adopts `t` and moves to its position: the next tick is the first at or after `from` on `t`
  /// (song position pointer, START, CONTINUE). Ticks in between are not played; position waits
  /// jumped over complete at once. `from` may lie in the past (the timestamp of the MIDI clock
  /// pulse that caused the jump): the tick there is then delivered at once, late by the time it
  /// took to get here.
  void relocate(const timeline_type& t, time_point from = Clock::now()) {
    s_->pending_.reset();
    s_->timeline_ = t;
    s_->applied_.reset();
    s_->next_tick_ = s_->first_tick_at_or_after(from);
    s_->retime();
  }

  /// Stops delivering ticks until resume(); run() keeps running. Pending waits stay (a
  /// position wait cannot be reached while paused), except position waits made with
  /// on_pause::end, which complete now with the moment of the pause.
  void pause() {
    if (!s_->paused_) s_->end_at_pause();
    s_->paused_ = true;
    s_->retime();
  }
  /// Delivers again from the first tick at or after `from` (default now; see relocate).
  void resume(time_point from = Clock::now()) {
    if (!s_->paused_) return;
    s_->paused_ = false;
    s_->next_tick_ = s_->first_tick_at_or_after(from);
    s_->retime();
  }

  // --- Waits, for any coroutine (TempoClock's sched, aalink's sync) ----------------------------
  //
  // Each is an Asio asynchronous operation: any completion token (use_awaitable, a callback,
  // deferred, use_future), cancellable through the handler's cancellation slot (every
  // cancellation type; completes with asio::error::operation_aborted), and completed with
  // operation_aborted when run() returns. The handler runs on its associated executor (default:
  // the metronome's), never inside the initiating call.

  /// Waits for the next tick. Signature void(std::error_code, tick_type); completes after the
  /// callbacks of that tick. Called from a tick's callback, waits for the tick after it.
  template <class CompletionToken>
  auto async_wait_tick(CompletionToken&& token) {
    return async_wait_grid(detail::grid_wait::tick, beats{}, std::forward<CompletionToken>(token));
  }
  /// Waits for the next beat (the first tick of a beat). As async_wait_tick otherwise.
  template <class CompletionToken>
  auto async_wait_beat(CompletionToken&& token) {
    return async_wait_grid(detail::grid_wait::beat, beats{}, std::forward<CompletionToken>(token));
  }
  /// Waits for the next bar line. As async_wait_tick otherwise.
  template <class CompletionToken>
  auto async_wait_bar(CompletionToken&& token) {
    return async_wait_grid(detail::grid_wait::bar, beats{}, std::forward<CompletionToken>(token));
  }
  /// Waits for the first tick at or after position `p` (the next tick if `p` has passed).
  /// As async_wait_tick otherwise.
  template <class CompletionToken>
  auto async_wait_tick_at(beats p, CompletionToken&& token) {
    return async_wait_grid(detail::grid_wait::tick_at, p, std::forward<CompletionToken>(token));
  }

  /// Waits until the timeline reaches position `p` exactly, between ticks or on one. Signature
  /// void(std::error_code, moment_type). A position, not a time: it follows tempo changes, sync
  /// and relocate made while it waits (a relocation past `p` completes it at once), and waits
  /// while paused. A position already reached completes at once. A position on a tick completes
  /// before that tick's callbacks run (so a note ending there ends before the tick plays again).
  /// With on_pause::end, a pause() before `p` completes the wait at once (see on_pause).
  template <class CompletionToken>
  auto async_wait_until(beats p, CompletionToken&& token) {
    return async_wait_until(p, on_pause::hold, std::forward<CompletionToken>(token));
  }
  template <class CompletionToken>
  auto async_wait_until(beats p, on_pause when_paused, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(std::error_code, moment_type)>(
        [s = s_](auto handler, detail::position_key key) { s->add_position_wait(std::move(handler), key); }, token,
        detail::position_key{p, when_paused == on_pause::end});
  }
  /// Waits `d` beats from the current position: the tick being delivered when called from its
  /// callbacks, else the position now. As async_wait_until otherwise.
  template <class CompletionToken>
  auto async_wait_after(beats d, CompletionToken&& token) {
    return async_wait_after(d, on_pause::hold, std::forward<CompletionToken>(token));
  }
  template <class CompletionToken>
  auto async_wait_after(beats d, on_pause when_paused, CompletionToken&& token) {
    return async_wait_until(s_->current_position() + d, when_paused, std::forward<CompletionToken>(token));
  }

  /// Coroutine shorthands: `auto t = co_await m.next_beat();`, `co_await m.at(beats{16});`
  asio::awaitable<tick_type> next_tick() { return async_wait_tick(asio::use_awaitable); }
  asio::awaitable<tick_type> next_beat() { return async_wait_beat(asio::use_awaitable); }
  asio::awaitable<tick_type> next_bar() { return async_wait_bar(asio::use_awaitable); }
  asio::awaitable<tick_type> tick_at(beats p) { return async_wait_tick_at(p, asio::use_awaitable); }
  asio::awaitable<moment_type> at(beats p, on_pause w = on_pause::hold) {
    return async_wait_until(p, w, asio::use_awaitable);
  }
  asio::awaitable<moment_type> after(beats d, on_pause w = on_pause::hold) {
    return async_wait_after(d, w, asio::use_awaitable);
  }

 private:
  struct callback {
    detail::grid_wait every = detail::grid_wait::tick;
    std::function<void(const tick_type&)> sync;
    std::function<asio::awaitable<void>(const tick_type&)> async;
  };
  // An async callback in progress: its own signal cancels it (on stop, or when run() ends).
  struct callback_run {
    asio::cancellation_signal signal;
    std::uint64_t id = 0;
  };
  struct pending_tempo {
    bpm tempo;
    beats at;
  };
  // A next-bar change in force: the timeline before it still governs the positions before `at`.
  struct applied_tempo {
    timeline_type before;
    beats at;
  };
  template <class T>
  struct always_false : std::false_type {};

  template <class F>
  callback_id add_callback(F f, detail::grid_wait every) {
    if constexpr (!std::is_invocable_v<F&, const tick_type&>) {
      static_assert(always_false<F>::value,
                    "tactus: a metronome callback must be callable with `const basic_metronome<Clock>::tick_type&` "
                    "(tactus::tick for tactus::metronome; for basic_metronome<testing::manual_clock>, "
                    "tactus::basic_tick<testing::manual_clock>)");
      return 0;
    } else {
      using result = std::invoke_result_t<F&, const tick_type&>;
      static_assert(std::is_void_v<result> || std::is_same_v<result, asio::awaitable<void>>,
                    "tactus: a metronome callback returns void or asio::awaitable<void>");
      auto cb = std::make_shared<callback>();
      cb->every = every;
      if constexpr (std::is_void_v<result>) cb->sync = std::move(f);
      else cb->async = std::move(f);
      s_->callbacks_.push_back(std::move(cb));
      return s_->callbacks_.size() - 1;
    }
  }

  template <class CompletionToken>
  auto async_wait_grid(detail::grid_wait kind, beats p, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(std::error_code, tick_type)>(
        [s = s_](auto handler, detail::grid_wait k, beats target) {
          s->release_if_own_callback(handler);
          s->waiters_.add(std::move(handler), s->ex_, detail::grid_target{k, target, s->last_index_});
        },
        token, kind, p);
  }

  // Everything the coroutines touch, shared with them (see the class comment).
  struct state : std::enable_shared_from_this<state> {
    state(executor_type ex, bpm tempo, tactus::meter m, tactus::subdivision s)
        : ex_(std::move(ex)),
          timer_(ex_),
          position_timer_(ex_),
          stop_(ex_, 1),
          callback_done_(ex_, 1),
          timeline_(tempo, time_point{}),
          meter_(m),
          sub_(s) {}

    // --- run()'s start and end ---

    void begin(const start_options& o) {
      running_ = true;
      stop_requested_ = false;
      stop_.reset();
      callback_done_.reset();
      const auto now = Clock::now();
      auto start = now;
      if (o.quantum > beats{0}) {
        const timeline_type grid(timeline_.tempo(), o.origin);
        start = grid.time_at(grid.next_multiple(now, o.quantum));
      }
      timeline_ = timeline_type(timeline_.tempo(), start, beats{0});
      pending_.reset();
      applied_.reset();
      next_tick_ = 0;
      index_ = 0;
      last_index_ = -1;
      paused_ = o.paused;
      serve_positions();
    }

    void end() {
      running_ = false;
      in_callback_ = false;
      blocking_ = 0;
      timer_.cancel();
      position_timer_.cancel();
      for (auto& r : runs_) r->signal.emit(asio::cancellation_type::terminal);
      waiters_.complete_all(asio::error::operation_aborted, tick_type{});
      positions_.complete_all(asio::error::operation_aborted, moment_type{});
    }

    void stop() {
      stop_requested_ = true;
      timer_.cancel();
      if (!running_) return;
      stop_.try_send(std::error_code{}, 0);
      for (auto& r : runs_) r->signal.emit(asio::cancellation_type::terminal);
    }

    void shut_down() {
      stop();
      if (!running_) {
        waiters_.complete_all(asio::error::operation_aborted, tick_type{});
        positions_.complete_all(asio::error::operation_aborted, moment_type{});
      }
    }

    // --- positions and times ---

    beats tick_position(std::int64_t tick) const noexcept { return sub_.tick_length() * tick; }

    // The timeline that governs position `p` / time `t`: a pending next-bar change governs from
    // its bar line on.
    timeline_type timeline_for(beats p) const noexcept {
      if (pending_ && p >= pending_->at) return timeline_.with_tempo_at_beat(pending_->tempo, pending_->at);
      if (applied_ && p < applied_->at) return applied_->before;
      return timeline_;
    }
    time_point time_of(beats p) const noexcept { return timeline_for(p).time_at(p); }
    beats position_at(time_point t) const noexcept {
      if (pending_ && t >= timeline_.time_at(pending_->at))
        return timeline_.with_tempo_at_beat(pending_->tempo, pending_->at).beat_at(t);
      if (applied_ && t < applied_->before.time_at(applied_->at)) return applied_->before.beat_at(t);
      return timeline_.beat_at(t);
    }
    beats current_position() const noexcept { return in_callback_ ? current_.position : position_at(Clock::now()); }

    // A pending next-bar tempo change takes effect once the grid reaches it.
    void apply_pending(std::int64_t tick) {
      if (pending_ && tick_position(tick) >= pending_->at) {
        // The grid schedules the bar line's tick ahead of time: positions before the bar line
        // (a swung note, a position wait) keep the old tempo.
        applied_ = applied_tempo{timeline_, pending_->at};
        timeline_ = timeline_.with_tempo_at_beat(pending_->tempo, pending_->at);
        pending_.reset();
      }
    }

    time_point deadline_of(std::int64_t tick) {
      apply_pending(tick);
      return timeline_.time_at(tick_position(tick));
    }

    std::int64_t first_tick_at_or_after(time_point t) {
      auto k = floor_div(timeline_.next_tick(t, sub_), sub_.tick_length());
      if (pending_ && tick_position(k) >= pending_->at) {
        apply_pending(k);
        k = floor_div(timeline_.next_tick(t, sub_), sub_.tick_length());
      }
      return k;
    }

    duration skip_after() const noexcept {
      return std::chrono::duration_cast<duration>(timeline_.tempo().period() *
                                                  (skip_threshold_ / sub_.ticks_per_beat()));
    }

    void set_tempo(bpm tempo, tempo_change when) {
      applied_.reset();
      if (!running_) {
        timeline_ = timeline_type(tempo, timeline_.anchor_time(), timeline_.anchor_beat());
        return;
      }
      if (when == tempo_change::next_bar) {
        const beats bar = meter_.bar_length();
        // Inside a callback: the first bar line after this tick; between ticks: the first at or
        // after the next tick to fire.
        const auto k = in_callback_ ? floor_div(current_.position, bar) + 1 : ceil_div(tick_position(next_tick_), bar);
        pending_ = pending_tempo{tempo, bar * k};
        retime();
        return;
      }
      pending_.reset();
      timeline_ = in_callback_ ? timeline_.with_tempo_at_beat(tempo, current_.position)
                               : timeline_.with_tempo(tempo, Clock::now());
      retime();
    }

    void retime() {
      if (!running_) return;
      timer_.cancel();
      serve_positions();
    }

    // --- position waits: their own timer, set for the earliest position's time ---

    template <class Handler>
    void add_position_wait(Handler handler, detail::position_key key) {
      release_if_own_callback(handler);
      if (key.ends_at_pause && running_ && paused_ && !stop_requested_) {
        // Paused already: nothing to wait for.
        asio::post(asio::get_associated_executor(handler, ex_),
                   [h = std::move(handler), m = moment_now()]() mutable { std::move(h)(std::error_code{}, m); });
        return;
      }
      positions_.add(std::move(handler), ex_, key);
      serve_positions();
    }

    // pause(): the waits made with on_pause::end complete with the moment of the pause.
    void end_at_pause() {
      if (!running_ || stop_requested_) return;
      const auto at = moment_now();
      positions_.complete_each_if([](const detail::position_key& k) { return k.ends_at_pause; },
                                  [&](const detail::position_key&) { return at; });
    }

    // The moment of a wait ended by a pause: where the metronome is now.
    moment_type moment_now() const {
      const auto now = Clock::now();
      return moment_type{current_position(), now, now, timeline_.tempo()};
    }

    // Completes the position waits whose time has come and sets the timer for the next one.
    void serve_positions() {
      if (!running_ || stop_requested_) return;  // end() completes them
      const auto now = Clock::now();
      if (!paused_) {
        positions_.complete_each_if(
            [&](const detail::position_key& k) { return time_of(k.position) <= now; },
            [&](const detail::position_key& k) {
              ++positions_completed_;
              return moment_type{k.position, time_of(k.position), now, timeline_for(k.position).tempo()};
            });
      }
      auto earliest = time_point::max();
      if (!paused_)
        positions_.for_each_key(
            [&](const detail::position_key& k) { earliest = std::min(earliest, time_of(k.position)); });
      if (earliest == time_point::max()) {
        if (position_waiting_) position_timer_.cancel();
        return;
      }
      position_timer_.expires_at(earliest);  // cancels a wait in progress, which then comes back here
      if (!position_waiting_) {
        position_waiting_ = true;
        position_timer_.async_wait([self = this->shared_from_this()](std::error_code) {
          self->position_waiting_ = false;
          self->serve_positions();
        });
      }
    }

    // --- async callbacks ---

    // A wait on this metronome from the async callback the grid is awaiting (its coroutine's
    // cancellation slot is the one we recorded) releases the grid: the callback runs on beside it.
    template <class Handler>
    void release_if_own_callback(const Handler& handler) {
      if (blocking_ == 0 || !blocking_slot_.is_connected()) return;
      auto slot = asio::get_associated_cancellation_slot(handler);
      if (slot.is_connected() && slot == blocking_slot_) {
        blocking_ = 0;
        blocking_slot_ = {};
        callback_done_.try_send(std::error_code{}, 0);
      }
    }

    void finished(const std::shared_ptr<callback_run>& run) {
      if (blocking_ == run->id) {
        blocking_ = 0;
        blocking_slot_ = {};
        callback_done_.try_send(std::error_code{}, 0);
      }
      // Dropped later: the callback's coroutine may still be unwinding inside its signal's slot.
      asio::post(ex_, [self = this->shared_from_this(), run] {
        auto& r = self->runs_;
        r.erase(std::remove(r.begin(), r.end(), run), r.end());
      });
    }

    // stop() or the end of run(): no further callback, and the abort it causes in an awaiting
    // callback is not an error.
    bool ending() const noexcept { return stop_requested_ || !running_; }

    // operation_aborted, or channel_cancelled from an Asio channel's receive.
    static bool is_abort(std::exception_ptr e) noexcept { return detail::is_cancellation(e); }

    void report(std::exception_ptr e, const tick_type& t) noexcept {
      try {
        if (on_error_) return on_error_(e, t);
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        std::cerr << "tactus: a metronome callback threw at bar " << t.bar << " beat " << t.beat_in_bar << ": "
                  << x.what() << '\n';
      } catch (...) {
        std::cerr << "tactus: a metronome callback threw at bar " << t.bar << " beat " << t.beat_in_bar << '\n';
      }
    }

    tick_type make_tick(std::int64_t tick, time_point scheduled, time_point fired, std::int64_t skipped) const {
      const int tpb = sub_.ticks_per_beat();
      const beats position = tick_position(tick);
      const auto whole_beats = position.whole();
      tick_type t;
      t.index = index_;
      t.position = position;
      t.tick_in_beat = static_cast<int>(tick - whole_beats * tpb);
      t.bar = floor_div(position, meter_.bar_length());
      t.beat_in_bar = static_cast<int>(whole_beats - t.bar * meter_.beats_per_bar());
      t.scheduled = scheduled;
      t.fired = fired;
      t.skipped = skipped;
      t.tempo = timeline_.tempo();
      return t;
    }

    executor_type ex_;
    asio::basic_waitable_timer<Clock> timer_;           // the grid's
    asio::basic_waitable_timer<Clock> position_timer_;  // the position waits'
    // Events as one-slot channels. The int carries nothing: Asio 1.22's channel_traits cannot
    // instantiate void(std::error_code) alone (two partial specializations match it).
    detail::channel<void(std::error_code, int)> stop_;           // stop() -> run()
    detail::channel<void(std::error_code, int)> callback_done_;  // an awaited callback ended or let go
    timeline_type timeline_;
    tactus::meter meter_;
    tactus::subdivision sub_;
    std::optional<pending_tempo> pending_;
    std::optional<applied_tempo> applied_;
    std::vector<std::shared_ptr<callback>> callbacks_;
    std::vector<std::shared_ptr<callback_run>> runs_;
    detail::grid_waiters<Clock> waiters_;
    detail::waiter_list<moment_type, detail::position_key> positions_;
    error_handler on_error_;
    overrun_policy policy_ = overrun_policy::skip;
    double skip_threshold_ = 0.25;
    duration late_threshold_ = std::chrono::duration_cast<duration>(std::chrono::milliseconds(1));
    tick_type current_{};
    std::int64_t next_tick_ = 0;
    std::int64_t index_ = 0;
    std::int64_t last_index_ = -1;  // the index of the tick being or last delivered
    std::int64_t delivered_ = 0;
    std::int64_t late_ = 0;
    std::int64_t skipped_ = 0;
    std::uint64_t run_ids_ = 0;
    std::uint64_t positions_completed_ = 0;  // since the grid loop last let them run first
    std::uint64_t blocking_ = 0;             // the id of the async callback the grid awaits, 0 for none
    asio::cancellation_slot blocking_slot_;
    bool running_ = false;
    bool stop_requested_ = false;
    bool paused_ = false;
    bool in_callback_ = false;
    bool position_waiting_ = false;
  };

  // The grid: wakes on each tick (absolute deadlines from the timeline) and delivers it.
  static asio::awaitable<void> grid_loop(std::shared_ptr<state> s) {
    const auto cs = co_await asio::this_coro::cancellation_state;
    std::int64_t skipped_run = 0;
    bool skipped_this_wake = false;  // skip at most once per wake-up: the loop always progresses
    for (;;) {
      if (s->stop_requested_ || cs.cancelled() != asio::cancellation_type::none) co_return;
      const auto deadline = s->paused_ ? time_point::max() : s->deadline_of(s->next_tick_);
      if (s->paused_ || Clock::now() < deadline) {
        s->timer_.expires_at(deadline);
        co_await s->timer_.async_wait(detail::as_tuple(asio::use_awaitable));
        skipped_this_wake = false;
        continue;  // woken, re-timed by a tempo change, stopped or cancelled: look again
      }
      const auto fired = Clock::now();
      // Skipping moves to the first tick at or after `fired`; if the clock has moved past that
      // one too by the next look (ticks shorter than this loop on a slow machine), it is
      // delivered late rather than skipped again, so the loop never spins without delivering.
      if (s->policy_ == overrun_policy::skip && !skipped_this_wake && fired - deadline > s->skip_after()) {
        skipped_this_wake = true;
        const auto first_due = s->first_tick_at_or_after(fired);
        skipped_run += first_due - s->next_tick_;
        s->skipped_ += first_due - s->next_tick_;
        s->index_ += first_due - s->next_tick_;
        s->next_tick_ = first_due;
        continue;
      }
      // Position waits due by now complete before this tick's callbacks run: the note-off due
      // at a tick goes out before that tick's note-on. Their completions are posted; going to
      // the back of the queue once lets them run first.
      s->serve_positions();
      if (s->positions_completed_ != 0) {
        s->positions_completed_ = 0;
        co_await asio::post(s->ex_, asio::use_awaitable);
        if (s->stop_requested_ || cs.cancelled() != asio::cancellation_type::none) co_return;
      }
      co_await deliver(s, s->make_tick(s->next_tick_, deadline, fired, skipped_run), cs);
      skipped_run = 0;
      skipped_this_wake = false;
      ++s->next_tick_;
      ++s->index_;
    }
  }

  static asio::awaitable<void> deliver(std::shared_ptr<state> s, tick_type t, asio::cancellation_state cs) {
    ++s->delivered_;
    if (t.fired - t.scheduled > s->late_threshold_) ++s->late_;
    s->current_ = t;
    s->last_index_ = t.index;
    s->in_callback_ = true;
    // Index, not iterators: a callback may register another.
    for (std::size_t i = 0; i < s->callbacks_.size(); ++i) {
      if (s->ending() || cs.cancelled() != asio::cancellation_type::none) break;  // the tick was reached: waits hear it
      auto cb = s->callbacks_[i];  // our own reference: remove() during the call is safe
      if (!cb || !detail::grid_target{cb->every}.matches(t)) continue;
      if (cb->sync) {
        try {
          cb->sync(t);
        } catch (...) {
          s->report(std::current_exception(), t);
        }
      } else if (cb->async) {
        co_await await_callback(s, std::move(cb), t);
      }
    }
    s->in_callback_ = false;
    s->waiters_.complete_if([&t](const detail::grid_target& w) { return w.matches(t); }, t);
  }

  // Runs an async callback as a coroutine of its own and waits until it ends or lets the grid
  // go (release_if_own_callback). A hand-written event rather than co_await on the callback
  // itself, because neither co_await nor an awaitable operator can stop waiting for an
  // operation that ignores cancellation, and run() must return at once (see run()).
  static asio::awaitable<void> await_callback(std::shared_ptr<state> s, std::shared_ptr<callback> cb, tick_type t) {
    auto run = std::make_shared<callback_run>();
    run->id = ++s->run_ids_;
    s->runs_.push_back(run);
    s->blocking_ = run->id;
    s->blocking_slot_ = {};
    asio::co_spawn(s->ex_, invoke(s, std::move(cb), t, run->id),
                   asio::bind_cancellation_slot(run->signal.slot(), [s, run, t](std::exception_ptr e) {
                     if (e && !(s->ending() && state::is_abort(e))) s->report(e, t);
                     s->finished(run);
                   }));
    co_await s->callback_done_.async_receive(detail::as_tuple(asio::use_awaitable));
  }

  static asio::awaitable<void> invoke(std::shared_ptr<state> s, std::shared_ptr<callback> cb, tick_type t,
                                      std::uint64_t id) {
    const auto cs = co_await asio::this_coro::cancellation_state;
    if (s->blocking_ == id) s->blocking_slot_ = cs.slot();
    co_await cb->async(t);
  }

  std::shared_ptr<state> s_;
};

using metronome = basic_metronome<>;

}  // namespace tactus
