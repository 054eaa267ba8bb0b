// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/detail/asio_compat.hpp>
#include <tactus/detail/waiter_list.hpp>
#include <tactus/metronome.hpp>
#include <tactus/midi/clock_transport.hpp>
#include <tactus/midi/input.hpp>
#include <tactus/midi/message.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/basic_waitable_timer.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/error.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

// Follow an external 24 ppqn MIDI clock with a tactus metronome: the application's on_beat code
// is the same for the internal clock and for an external one.
//
//     tactus::metronome m{ex, tactus::bpm{120}};
//     m.on_tick([](const tactus::tick& b) { play(b); });
//     tactus::midi::input in{ex, "circuit"};
//     tactus::midi::clock_follower follow{in, m};
//     follow.on_state_change([&](auto s) { if (s != tactus::midi::transport_state::playing) out.panic(); });
//     asio::co_spawn(ex, m.run({.paused = true}), tactus::rethrow);
//     asio::co_spawn(ex, follow.run(), tactus::rethrow);
//
// How the metronome is driven (the beat position is the song position: beats = pulses / 24):
//  - START / CONTINUE / a clock coming back after being lost: the metronome waits (paused) for
//    the first CLOCK, then jumps there (relocate) and resumes, so the grid point at that pulse
//    (beat 0 after START) fires at once, at the best tempo known (the estimate, else the last
//    one that was locked, else the metronome's own);
//  - every further CLOCK: sync() to the estimator's regression line, which keeps the grid
//    position and corrects tempo and phase; with the estimator's latency set to the mean delay
//    of the timestamps (half a period under JACK), grid points land where the source sent
//    its pulses, within about one audio period. While the fit is younger than four pulses its
//    tempo is too rough: the timeline is anchored on the newest pulse at the best tempo known;
//  - STOP: pause(). A silence longer than the estimator's dropout tolerance (max_dropout
//    pulses) while playing: pause(), so nothing plays ahead of the source; the next CLOCK
//    resumes from the position after the last one (as the estimator counts it). No CLOCK for
//    lost_after_beats: state `lost` (silence downstream from on_state_change). A source that
//    goes quiet after STOP is stopped, not lost.
//
// Repeated and missing pulses (clock_transport.hpp says exactly what is detected):
//  - JACK2 delivers a late client's cycle twice with the same stamp. A repeated START, CONTINUE,
//    STOP or Song Position Pointer, and a repeated CLOCK where the locked fit leaves no room for
//    a pulse, are ignored (transport().repeats()): no pulse, no relocate, no beat twice. A
//    repeated CLOCK before the fit is locked cannot be told from pulses bunched by a stall and
//    moves the position one pulse.
//  - A lost CLOCK (an interval of about two periods, 1.5..2.5, on an established fit, with the
//    position on the line agreeing within 0.3 pulse) is counted (transport().inferred()): the
//    position stays right and the metronome, on the fit, fires the beat the pulse would have
//    carried on time; async_wait_pulse reports the pulse after it. Otherwise (young fit,
//    tempo change in progress, too much jitter) the pulse is taken for the next one: the
//    position falls one pulse behind the source and stays there.

namespace tactus::midi {

struct clock_follower_options {
  /// Transport and estimator tuning: lost timeout (lost_after_beats), Song Position Pointer,
  /// beats per bar, and estimator.latency (set it to half the audio period under JACK).
  clock_transport_config transport{};
};

/// The clock-following logic on any Clock: feed it the source's messages with their arrival
/// times (on_message) and it drives `m`, watches for a lost clock with a timer on Clock, and
/// reports state, tempo and position. clock_follower binds it to a tactus::midi::input; tests
/// use it directly on testing::manual_clock.
///
/// Thread-safe: no. Everything runs on the metronome's executor (the input's too).
/// Realtime-safe: no (it is Asio code on an executor; the realtime hand-off is the input's).
template <class Clock = std::chrono::steady_clock>
class basic_clock_follower {
 public:
  using clock_type = Clock;
  using time_point = typename Clock::time_point;
  using duration = typename Clock::duration;
  using metronome_type = basic_metronome<Clock>;
  using timeline_type = basic_timeline<Clock>;
  using executor_type = asio::any_io_executor;

  /// Drives `m`, which must outlive the follower and run (paused) on the same executor.
  explicit basic_clock_follower(metronome_type& m, clock_follower_options o = {})
      : metro_(m), options_(o), transport_(o.transport), watchdog_(m.get_executor()) {}

  basic_clock_follower(const basic_clock_follower&) = delete;
  basic_clock_follower& operator=(const basic_clock_follower&) = delete;
  ~basic_clock_follower() { shutdown(); }

  executor_type get_executor() const { return metro_.get_executor(); }

  /// One message from the clock source that arrived at `t` (CLOCK, START, CONTINUE, STOP, Song
  /// Position Pointer; anything else is ignored). Ignored after shutdown() until restart().
  /// Executor only.
  void on_message(const message& msg, time_point t) {
    if (stopped_) return;  // after stop nothing is followed, reported or timed
    const auto before = transport_.state();
    const auto repeats = transport_.repeats();
    if (!transport_.on_message(msg, t)) return;
    if (transport_.repeats() != repeats) return;  // a cycle delivered twice: nothing happened
    switch (msg.type()) {
      case message_type::start:
      case message_type::continue_:
        // The grid waits for the first CLOCK: that pulse is the position.
        following_ = false;
        metro_.pause();
        break;
      case message_type::stop:
        following_ = false;
        metro_.pause();
        break;
      case message_type::clock: on_clock(t); break;
      default: break;
    }
    if (transport_.state() != before) changed(transport_.state());
  }

  /// stopped / playing / lost. Executor only.
  transport_state state() const noexcept { return transport_.state(); }
  /// The estimated tempo of the source (nullopt before two pulses of a fit). Executor only.
  std::optional<bpm> tempo() const noexcept { return transport_.estimator().tempo(); }
  /// The song position of the last CLOCK (bar:beat:pulse), or where CONTINUE resumes. Executor only.
  song_position position() const noexcept { return transport_.position(); }
  /// The transport, with its estimator (jitter, locked(), beat_time()...). Executor only.
  const clock_transport<Clock>& transport() const noexcept { return transport_; }

  /// `f(state)` is called on the executor at every change of state(), before async_wait_state
  /// waiters complete. Replaces any previous function.
  void on_state_change(std::function<void(transport_state)> f) { on_change_ = std::move(f); }

  /// Waits for the next CLOCK while playing. Signature void(std::error_code, std::int64_t pulse):
  /// the song position of that pulse (0 = the first CLOCK after START). The handler runs on its
  /// associated executor (for use_awaitable, the awaiting coroutine's), never inline.
  /// Cancellable through its cancellation slot (operation_aborted), as when the follower ends.
  template <class CompletionToken>
  auto async_wait_pulse(CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(std::error_code, std::int64_t)>(
        [this](auto handler) { pulse_waiters_.add(std::move(handler), get_executor()); }, token);
  }

  /// Waits for the next change of state(). Signature void(std::error_code, transport_state),
  /// with the new state. Otherwise as async_wait_pulse.
  template <class CompletionToken>
  auto async_wait_state(CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(std::error_code, transport_state)>(
        [this](auto handler) { state_waiters_.add(std::move(handler), get_executor()); }, token);
  }

  /// Stops following: cancels the lost-clock timer (a handler of it already queued does
  /// nothing), pauses the metronome, completes pending waits with operation_aborted. From then
  /// on nothing is followed, reported (on_state_change) or timed: messages fed afterwards are
  /// ignored until restart(), so a clock message that arrives as the program stops cannot
  /// re-arm the timer nor keep the io_context running. Executor only.
  void shutdown() {
    stopped_ = true;
    disarm_watchdog();
    following_ = false;
    metro_.pause();
    pulse_waiters_.complete_all(asio::error::operation_aborted, 0);
    state_waiters_.complete_all(asio::error::operation_aborted, transport_.state());
  }

  /// Follows again after shutdown(): the messages fed from now on (clock_follower::run() calls
  /// it as it begins). The transport keeps its state and position. Executor only.
  void restart() noexcept { stopped_ = false; }

  /// Whether shutdown() was called since the last restart(). Executor only.
  bool stopped() const noexcept { return stopped_; }

 private:
  void on_clock(time_point t) {
    last_clock_ = t;
    if (!transport_.playing()) return;  // tempo tracked while stopped, but the music stands
    const auto& est = transport_.estimator();
    const std::int64_t pulse = transport_.pulse();
    const beats position(pulse, pulses_per_beat);
    if (est.locked()) last_tempo_ = est.tempo();
    // The fit's own tempo and grid once it has a few pulses and is a plausible tempo (pulses
    // bunched by a stall are not: see clock_estimator_config::max_bpm).
    const auto fitted = est.fit_size() >= young_fit ? est.timeline() : std::nullopt;
    if (!following_) {
      // Jump to this pulse's position: its grid point fires at once, anchored on the pulse's
      // own time (latency removed, as the estimator does), not on whenever we got here.
      const bpm guess = fitted ? fitted->tempo() : best_tempo();
      const auto anchor = t - std::chrono::duration_cast<duration>(options_.transport.estimator.latency);
      metro_.relocate(timeline_type(guess, anchor, position), anchor);
      metro_.resume(anchor);
      following_ = true;
    } else if (fitted) {
      metro_.sync(*fitted);
    } else {
      // A young fit (after START from silence, or a gap): its tempo is too rough to schedule
      // from; anchor on this pulse (latency removed, as the estimator does) at the best tempo.
      metro_.sync(timeline_type(
          best_tempo(), t - std::chrono::duration_cast<duration>(options_.transport.estimator.latency), position));
    }
    if (transport_.state() == transport_state::playing) arm_watchdog();
    pulse_waiters_.complete_all({}, pulse);
  }

  bpm best_tempo() const noexcept {
    if (const auto t = transport_.estimator().tempo(); t && transport_.estimator().locked()) return *t;
    return last_tempo_ ? *last_tempo_ : metro_.tempo();
  }

  void changed(transport_state s) {
    if (s == transport_state::lost) {
      following_ = false;
      metro_.pause();
    }
    if (s != transport_state::playing) disarm_watchdog();
    if (on_change_) on_change_(s);
    state_waiters_.complete_all({}, s);
  }

  // One timer, armed when the clock runs while playing and re-armed when it fires early (not
  // once per pulse: that would be a cancel and a handler per pulse). Two deadlines: past the
  // estimator's dropout tolerance the metronome holds (it does not play ahead of a source that
  // paused: the next pulse continues from where the source is), past the timeout it is lost.
  // A handler already queued when the timer is cancelled still completes without an error: each
  // arming has its number, and a handler whose number is not the current one does nothing.
  void arm_watchdog() {
    if (watching_) return;
    watching_ = true;
    const std::uint64_t arming = ++arming_;
    watchdog_.expires_at(*last_clock_ + (following_ ? hold_after() : lost_after()));
    watchdog_.async_wait([this, arming](std::error_code ec) {
      if (ec || arming != arming_) return;  // cancelled: shutdown() or a state change disarmed it
      watching_ = false;
      if (transport_.state() != transport_state::playing) return;
      const auto now = Clock::now();
      if (following_ && now - *last_clock_ >= hold_after()) {
        following_ = false;
        metro_.pause();
      }
      if (transport_.check_lost(now)) {
        changed(transport_.state());
      } else {
        arm_watchdog();
      }
    });
  }

  void disarm_watchdog() {
    watching_ = false;
    ++arming_;
    watchdog_.cancel();
  }

  // A little past the timeout, so that check_lost (strictly greater) says yes on time.
  duration lost_after() const { return std::chrono::duration_cast<duration>(transport_.timeout()) + duration(1); }
  // Silence longer than the estimator's dropout tolerance (it then restarts the fit).
  duration hold_after() const {
    const auto p = transport_.estimator().pulse_period();
    if (!p) return lost_after();
    const auto hold =
        std::chrono::duration_cast<duration>(*p * (double(options_.transport.estimator.max_dropout) + 1.5));
    return std::min(hold, lost_after());
  }

  static constexpr std::size_t young_fit = 4;  // pulses before the estimator's tempo is used

  metronome_type& metro_;
  clock_follower_options options_;
  clock_transport<Clock> transport_;
  asio::basic_waitable_timer<Clock> watchdog_;
  std::optional<time_point> last_clock_;
  std::optional<bpm> last_tempo_;
  std::function<void(transport_state)> on_change_;
  tactus::detail::waiter_list<std::int64_t> pulse_waiters_;
  tactus::detail::waiter_list<transport_state> state_waiters_;
  bool following_ = false;    // the metronome is on the source's grid
  bool watching_ = false;     // the lost-clock timer is pending
  bool stopped_ = false;      // shutdown() called: nothing is followed until restart()
  std::uint64_t arming_ = 0;  // the lost-clock timer's current arming (see arm_watchdog)
};

/// Follows the MIDI clock arriving on a tactus::midi::input with a tactus::metronome.
///
/// Thread-safe: no; every member on the executor of the input and the metronome (one executor,
/// or a strand). Realtime-safe: no.
class clock_follower : public basic_clock_follower<std::chrono::steady_clock> {
 public:
  /// Follows the clock on `in` (read by run(), its only reader) with `m`; both must outlive the
  /// follower. Co_spawn m.run({.paused = true}) and run() on the same executor.
  clock_follower(input& in, tactus::metronome& m, clock_follower_options o = {})
      : basic_clock_follower(m, o), in_(in), stop_(m.get_executor(), 1) {}

  /// Stops following; safe while run() is suspended (it then returns without touching the
  /// follower, or is destroyed with its io_context).
  ~clock_follower() {
    *alive_ = false;
    stop();
  }

  /// Receives the input's messages and follows them until stop(), the terminal cancellation of
  /// this coroutine (what `||`, task_group and shutdown emit), or the closing of the input;
  /// returns cleanly in every case, with the metronome paused and pending waits completed with
  /// operation_aborted. Partial and total cancellation are not supported (following has had side
  /// effects from the first message on): they leave it running, as metronome::run.
  asio::awaitable<void> run() {
    stop_.reset();
    restart();  // after a shutdown(): a second run() follows again
    // Shuts down on every way out while the follower lives; not when an io_context destroys this
    // frame (its timers' service is going then) or after the follower is gone.
    struct on_exit {
      clock_follower* self;
      std::shared_ptr<const bool> alive;
      bool returned = false;
      ~on_exit() {
        if (returned && *alive) self->shutdown();
      }
    } guard{this, alive_};
    // Whichever ends first cancels the other: the receive loop (also ended by the cancellation
    // of run(), which the operator forwards) or stop()'s message.
    using namespace tactus::detail::awaitable_operators;
    try {
      co_await (receive_loop(alive_) || stop_.async_receive(asio::use_awaitable));
    } catch (...) {
      guard.returned = true;
      throw;
    }
    guard.returned = true;
  }

  /// Makes run() return (at once if it waits for a message). Executor only.
  void stop() { stop_.try_send(std::error_code{}, 0); }

 private:
  asio::awaitable<void> receive_loop(std::shared_ptr<const bool> alive) {
    for (;;) {
      auto [ec, m] = co_await in_.async_receive(tactus::detail::as_tuple(asio::use_awaitable));
      if (ec || !*alive) co_return;  // stopped, cancelled, the input closed, or we are gone
      on_message(m.msg, m.time);
    }
  }

  input& in_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  // One-slot event; the int carries nothing (Asio 1.22 cannot instantiate void(error_code) alone).
  tactus::detail::channel<void(std::error_code, int)> stop_;
};

}  // namespace tactus::midi
