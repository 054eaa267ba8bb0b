// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/detail/asio_compat.hpp>
#include <tactus/link/session.hpp>
#include <tactus/metronome.hpp>
#include <tactus/midi/clock_follower.hpp>
#include <tactus/midi/clock_master.hpp>

#include <asio/awaitable.hpp>
#include <asio/basic_waitable_timer.hpp>
#include <asio/co_spawn.hpp>
#include <asio/post.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <memory>
#include <optional>
#include <system_error>
#include <variant>

// Bridges between a Link session and MIDI clock, the two that Link users ask for:
//
//  - midi_clock_out: hardware driven from a Link session. A midi::clock_master's 24 ppqn pulses
//    fall on the session's beats, START when the session starts (beat 0 there: alone at once,
//    with peers at the session's next bar line) and STOP when it stops. Without start_stop, the
//    clock starts on the session's next bar line (the first multiple of the quantum) and runs
//    until run() ends; the follower's song position 0 is then that bar line.
//  - midi_clock_in: hardware brought into a session. The tempo and phase of a
//    midi::clock_follower's metronome are committed to the session on every beat (Link's
//    forceBeatAtTime, the call Link provides for bridging an external clock: the source's bar
//    lines become the session's, the peers follow), START and STOP as the session's start/stop.
//
// Both use the clock master and the follower through their public API only.

namespace tactus::link {

/// How midi_clock_out follows the session.
struct midi_clock_out_options {
  /// The session's bar, in beats: the MIDI song starts on a multiple of it.
  beats quantum{4};
  /// START/STOP follow the session's start/stop (enable start/stop sync on the session to share
  /// it with the peers). Else the clock starts on the next bar line and runs until run() ends.
  bool start_stop = true;
  /// How often the session's timeline is read again besides Link's change reports.
  std::chrono::milliseconds resync{50};
};

/// Drives a midi::basic_clock_master from a Link session (see the header comment).
///
/// Thread-safe: no; every member on the executor of the session and the master. Realtime-safe: no.
template <class Clock = std::chrono::steady_clock, midi::message_output Output = midi::output>
class basic_midi_clock_out {
 public:
  using time_point = typename Clock::time_point;
  using session_type = basic_session<Clock>;
  using master_type = midi::basic_clock_master<Clock, Output>;

  /// `s` and `master` must outlive the bridge and share its executor; the bridge runs the master
  /// (do not co_spawn master.run() yourself).
  basic_midi_clock_out(session_type& s, master_type& master, midi_clock_out_options o = {})
      : session_(s),
        master_(master),
        options_(o),
        timer_(s.get_executor()),
        stop_(s.get_executor(), 1),
        master_done_(s.get_executor(), 1) {
    listener_ = session_.on_change([this](session_event) { timer_.cancel(); });
  }
  /// Stops following; a clock it started is stopped (STOP), run() suspended or not.
  ~basic_midi_clock_out() {
    *alive_ = false;
    session_.remove(listener_);
    stop();
    if (clocking_ && master_.running()) master_.stop();  // the master outlives the bridge
  }
  basic_midi_clock_out(const basic_midi_clock_out&) = delete;
  basic_midi_clock_out& operator=(const basic_midi_clock_out&) = delete;

  /// Follows the session until stop() or the terminal cancellation of this coroutine; then stops
  /// the clock if it runs and returns once its STOP has been sent (so a port closed after run()
  /// returns has sent it). An error of the master (a send that failed) is rethrown here.
  /// Resumes on the executor.
  asio::awaitable<void> run() {
    stop_.reset();
    struct on_exit {  // unwinding (an exception, or the frame destroyed with its io_context)
      basic_midi_clock_out* self;
      std::shared_ptr<const bool> alive;
      ~on_exit() {
        if (*alive && self->master_.running()) self->master_.stop();
      }
    } guard{this, alive_};
    using namespace tactus::detail::awaitable_operators;
    co_await (loop(alive_) || stop_.async_receive(asio::use_awaitable));
    if (clocking_) {
      // Cancelled or stopped: the STOP is still to be sent, and awaited, whatever cancelled us.
      co_await asio::this_coro::reset_cancellation_state();
      co_await asio::this_coro::throw_if_cancelled(false);
      if (master_.running()) master_.stop();
      if (clocking_) co_await master_done_.async_receive(tactus::detail::as_tuple(asio::use_awaitable));
    }
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

  /// Makes run() return (the clock then stops). Executor only.
  void stop() { stop_.try_send(std::error_code{}, 0); }

  /// Whether the MIDI clock runs (between START and STOP).
  bool clock_running() const noexcept { return clocking_; }

 private:
  struct pending_start {
    double beat;  // the session's beat that is the song's position 0
    time_point at;
  };

  asio::awaitable<void> loop(std::shared_ptr<const bool> alive) {
    const auto cs = co_await asio::this_coro::cancellation_state;
    for (;;) {
      const auto wake = step();
      if (error_) co_return;
      if (clocking_ && !master_.running()) {
        // The master's run() was just spawned: once its metronome has begun, put it on the session.
        co_await asio::post(session_.get_executor(), asio::use_awaitable);
        if (!*alive || cs.cancelled() != asio::cancellation_type::none) co_return;
        continue;
      }
      timer_.expires_at(wake);
      co_await timer_.async_wait(tactus::detail::as_tuple(asio::use_awaitable));
      if (!*alive || cs.cancelled() != asio::cancellation_type::none) co_return;
    }
  }

  // Reads the session, starts, stops or re-times the clock; returns when to look again.
  time_point step() {
    auto st = session_.capture();
    const auto now = Clock::now();
    const time_point later = now + options_.resync;
    const bool playing = options_.start_stop ? st.isPlaying() : true;
    if (!playing) {
      start_.reset();
      if (clocking_ && master_.running()) master_.stop();  // STOP; the completion clears clocking_
      return later;
    }
    if (!clocking_) {
      if (!start_) start_ = first_beat(st, now);
      if (now < start_->at) return std::min(later, start_->at);
      offset_ = start_->beat;
      start_.reset();
      clocking_ = true;
      master_done_.reset();
      master_.set_tempo(bpm(st.tempo()));  // its first pulses at the session's tempo already
      asio::co_spawn(session_.get_executor(), master_.run(),
                     [this, alive = std::shared_ptr<const bool>(alive_)](std::exception_ptr e) {
                       if (!*alive) return;
                       clocking_ = false;
                       master_done_.try_send(std::error_code{}, 0);  // to run(), if it waits for the STOP
                       if (e) {
                         error_ = e;
                         stop();
                       }
                     });
      return later;
    }
    if (!master_.running()) return later;  // not begun yet (see loop)
    retime(st, now);
    return later;
  }

  // Where the song's position 0 falls: beat 0 at the session's start (the session's next bar line
  // when there are peers), or, joining a session long started or without start_stop, its next
  // bar line.
  pending_start first_beat(typename session_type::state_type& st, time_point now) {
    const double q = options_.quantum.count();
    if (options_.start_stop) {
      st.requestBeatAtStartPlayingTime(0.0, q);
      session_.commit(st);
      const auto at = from_link_time<Clock>(st.timeAtBeat(0.0, q));
      const auto pulse = std::chrono::duration_cast<typename Clock::duration>(bpm(st.tempo()).period() / 24);
      if (at >= now - pulse) return {0.0, at};
    }
    const double next_bar = std::ceil(st.beatAtTime(to_link_time<Clock>(now), q) / q) * q;
    return {next_bar, from_link_time<Clock>(st.timeAtBeat(next_bar, q))};
  }

  // The master's metronome onto the session's timeline, shifted so that its beat 0 is offset_.
  void retime(const typename session_type::state_type& st, time_point now) {
    const auto t = session_timeline<Clock>(st, options_.quantum, now);
    const basic_timeline<Clock> shifted(t.tempo(), t.anchor_time(), t.anchor_beat() - beats(offset_));
    auto& m = master_.metronome();
    const auto& current = m.timeline();
    // A follower of MIDI clock counts pulses: the grid is synced (every pulse is sent, those the
    // new timeline puts in the past at once) unless the session's beats jumped by a beat or more
    // (a beat requested elsewhere), where the pulses jump with them. A tempo change heard late
    // (Link's report, or the next resync) moves the position by a fraction of a beat only.
    const auto moved = shifted.beat_at(now) - current.beat_at(now);
    if (moved >= beats{1} || -moved >= beats{1}) {
      m.relocate(shifted, now);
      return;
    }
    const auto off = shifted.time_at(shifted.anchor_beat()) - current.time_at(shifted.anchor_beat());
    if (shifted.tempo() != current.tempo() || std::chrono::abs(off) > std::chrono::microseconds(2)) m.sync(shifted);
  }

  session_type& session_;
  master_type& master_;
  midi_clock_out_options options_;
  asio::basic_waitable_timer<Clock> timer_;
  tactus::detail::channel<void(std::error_code, int)> stop_;
  tactus::detail::channel<void(std::error_code, int)> master_done_;  // the master's run() ended
  typename session_type::listener_id listener_{};
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::optional<pending_start> start_;
  double offset_ = 0;
  std::exception_ptr error_;
  bool clocking_ = false;
};

/// Drives a midi::clock_master (steady_clock, a midi::output) from a Link session.
using midi_clock_out = basic_midi_clock_out<>;

/// How midi_clock_in brings the source into the session.
struct midi_clock_in_options {
  /// The session's bar, in beats: the source's bar lines become the session's.
  beats quantum{4};
  /// The source's START and STOP become the session's start/stop (share them with start/stop sync).
  bool start_stop = true;
};

/// Commits the tempo, phase and transport of a MIDI clock source (a midi::basic_clock_follower
/// driving `m`) to a Link session (see the header comment).
///
/// Thread-safe: no; every member on the executor. Realtime-safe: no.
template <class Clock = std::chrono::steady_clock>
class basic_midi_clock_in {
 public:
  using session_type = basic_session<Clock>;
  using follower_type = midi::basic_clock_follower<Clock>;
  using metronome_type = basic_metronome<Clock>;

  /// `s`, `f` and `m` (the metronome `f` drives) must outlive the bridge and share its executor.
  basic_midi_clock_in(session_type& s, follower_type& f, metronome_type& m, midi_clock_in_options o = {})
      : session_(s), follower_(f), metro_(m), options_(o), stop_(s.get_executor(), 1) {}
  ~basic_midi_clock_in() {
    *alive_ = false;
    stop();
  }
  basic_midi_clock_in(const basic_midi_clock_in&) = delete;
  basic_midi_clock_in& operator=(const basic_midi_clock_in&) = delete;

  /// Commits on every beat of the source and at every change of its transport, until stop() or
  /// the terminal cancellation of this coroutine. Resumes on the executor.
  asio::awaitable<void> run() {
    stop_.reset();
    const auto alive = alive_;
    for (;;) {
      using namespace tactus::detail::awaitable_operators;
      using tactus::detail::as_tuple;
      auto next = co_await (metro_.async_wait_beat(as_tuple(asio::use_awaitable)) ||
                            follower_.async_wait_state(as_tuple(asio::use_awaitable)) ||
                            stop_.async_receive(as_tuple(asio::use_awaitable)));
      if (!*alive || next.index() == 2) co_return;
      if (next.index() == 0) {
        auto [ec, t] = std::get<0>(next);
        if (ec) co_return;  // the metronome stopped
        on_beat(t);
      } else {
        auto [ec, state] = std::get<1>(next);
        if (ec) co_return;  // the follower shut down
        on_state(state);
      }
    }
  }

  /// Makes run() return. Executor only.
  void stop() { stop_.try_send(std::error_code{}, 0); }

  /// Commits made to the session so far.
  std::int64_t commits() const noexcept { return commits_; }

 private:
  // The source's beat `t.position` is at `t.scheduled`, at `t.tempo`: the session's too.
  void on_beat(const typename metronome_type::tick_type& t) {
    auto st = session_.capture();
    const auto at = to_link_time<Clock>(t.scheduled);
    st.setTempo(t.tempo.value(), at);
    st.forceBeatAtTime(t.position.count(), at, options_.quantum.count());
    if (options_.start_stop && !st.isPlaying() && follower_.state() == midi::transport_state::playing)
      st.setIsPlaying(true, at);
    session_.commit(st);
    ++commits_;
  }

  void on_state(midi::transport_state s) {
    if (!options_.start_stop || s == midi::transport_state::playing) return;  // the first beat starts it
    auto st = session_.capture();
    if (!st.isPlaying()) return;
    st.setIsPlaying(false, to_link_time<Clock>(Clock::now()));
    session_.commit(st);
    ++commits_;
  }

  session_type& session_;
  follower_type& follower_;
  metronome_type& metro_;
  midi_clock_in_options options_;
  tactus::detail::channel<void(std::error_code, int)> stop_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::int64_t commits_ = 0;
};

/// Brings a midi::clock_follower (steady_clock) into a Link session.
using midi_clock_in = basic_midi_clock_in<>;

}  // namespace tactus::link
