// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/detail/asio_compat.hpp>
#include <tactus/link/session.hpp>
#include <tactus/metronome.hpp>

#include <asio/awaitable.hpp>
#include <asio/basic_waitable_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <system_error>

// A tactus metronome on an Ableton Link session: its tempo, beats and phase against a quantum
// are the session's, so the application's callbacks, waits and sinks are the same as on the
// internal clock or a MIDI clock follower. A tempo set here is the session's tempo.
//
//     tactus::link::follower follow{link, m, {.quantum = tactus::beats{4}}};
//     m.on_beat([](const tactus::tick& t) { std::cout << t.bar << ':' << t.beat_in_bar << '\n'; });
//     asio::co_spawn(io, m.run({.paused = true}), tactus::rethrow);
//     asio::co_spawn(io, follow.run(), tactus::rethrow);
//     follow.set_tempo(tactus::bpm{128});   // the whole session plays at 128
//
// How the metronome is driven (as midi::clock_follower does, through its public API):
//  - the beat position is the session's beat against the quantum (Link's beatAtTime): its
//    magnitude is this peer's own, its phase the session's, so with a bar as long as the quantum
//    the bar lines fall on the session's;
//  - run() begins with relocate() onto the session's timeline and resume(): the first grid point
//    at or after now fires, in phase. The session's beat 0 fell when it began (alone: when the
//    session object was made, Link's timeline starts there), so the first beat is seldom beat 0
//    (bar 0, beat 1 or later); for beat 0 at the start, start_stop and start_playing();
//  - every change Link reports (tempo, start/stop, peers: Link's thread posts it to the
//    executor) and every `resync` period: sync() to the session's timeline when it differs from
//    the metronome's by more than Link's resolution (2 µs: Link rounds times to microseconds and
//    beats to micro-beats), or in tempo. The
//    period catches what Link changes without telling (clock drift compensation between peers);
//  - with start_stop, the metronome stays paused while the session is stopped. When it starts
//    (here, at a peer, or already playing when run() begins), beat 0 is requested at the start
//    time (Link's requestBeatAtStartPlayingTime: alone it is that time, with peers the next time
//    the session's phase is 0) and the metronome resumes there; a stop pauses it.

namespace tactus::link {

/// What a follower follows.
struct follower_options {
  /// The quantum of Link's phase, in beats: the session agrees on where each multiple of it
  /// falls (a bar in 4/4: beats{4}). A metronome's bar should be as long, or divide it.
  beats quantum{4};
  /// Follow the session's start/stop (enable start/stop sync on the session to share it with the
  /// peers): paused while stopped, beat 0 at the start.
  bool start_stop = false;
  /// How often the session's timeline is read again besides Link's change reports.
  std::chrono::milliseconds resync{50};
};

/// Drives `Clock`'s metronome from a Link session (see the header comment).
///
/// Thread-safe: no. Every member on the executor of the session and the metronome (one
/// executor, or a strand). Realtime-safe: no.
template <class Clock = std::chrono::steady_clock>
class basic_follower {
 public:
  using clock_type = Clock;
  using time_point = typename Clock::time_point;
  using duration = typename Clock::duration;
  using session_type = basic_session<Clock>;
  using metronome_type = basic_metronome<Clock>;
  using timeline_type = basic_timeline<Clock>;

  /// Follows `s` with `m`; both must outlive the follower and share its executor. Co_spawn
  /// m.run({.paused = true}) and run().
  basic_follower(session_type& s, metronome_type& m, follower_options o = {})
      : session_(s), metro_(m), options_(o), timer_(m.get_executor()), stop_(m.get_executor(), 1) {
    // A change Link reports wakes run()'s loop at once (its wait ends early).
    listener_ = session_.on_change([this](session_event) { timer_.cancel(); });
  }
  /// Stops following; safe while run() is suspended (it then returns without touching the
  /// follower, or is destroyed with its io_context).
  ~basic_follower() {
    *alive_ = false;
    session_.remove(listener_);
    stop();
  }
  basic_follower(const basic_follower&) = delete;
  basic_follower& operator=(const basic_follower&) = delete;

  /// Follows the session until stop() or the terminal cancellation of this coroutine (as
  /// metronome::run); returns cleanly either way, with the metronome paused. Resumes on the
  /// executor.
  asio::awaitable<void> run() {
    stop_.reset();
    running_ = true;
    following_ = false;
    struct on_exit {
      basic_follower* self;
      std::shared_ptr<const bool> alive;
      ~on_exit() {
        if (!*alive) return;  // the follower is gone (its metronome perhaps too)
        self->running_ = false;
        self->following_ = false;
        self->metro_.pause();
      }
    } guard{this, alive_};
    // Whichever ends first cancels the other: the loop or stop()'s message.
    using namespace tactus::detail::awaitable_operators;
    co_await (loop(alive_) || stop_.async_receive(asio::use_awaitable));
  }

  /// Makes run() return. Executor only.
  void stop() { stop_.try_send(std::error_code{}, 0); }

  /// Sets the session's tempo from now on (committed: every peer follows), and the
  /// metronome's at once, its beat position continuous. Executor only.
  void set_tempo(bpm t) {
    auto st = session_.capture();
    st.setTempo(t.value(), to_link_time<Clock>(Clock::now()));
    session_.commit(st);
    follow();
  }

  /// Starts the session playing with beat 0 now, or, with peers, at the next time the session's
  /// phase is 0 (a quantized start: Link's setIsPlayingAndRequestBeatAtTime). The metronome
  /// follows with start_stop. Executor only.
  void start_playing() {
    auto st = session_.capture();
    st.setIsPlayingAndRequestBeatAtTime(true, to_link_time<Clock>(Clock::now()), 0.0, options_.quantum.count());
    session_.commit(st);
    follow();
  }
  /// Stops the session now. Executor only.
  void stop_playing() {
    auto st = session_.capture();
    st.setIsPlaying(false, to_link_time<Clock>(Clock::now()));
    session_.commit(st);
    follow();
  }
  /// Asks for beat `b` at `t` (Link's requestBeatAtTime: alone, exactly; with peers, the next
  /// time after `t` in the phase of `b`, so the session's beats never jump). Executor only.
  void request_beat_at(beats b, time_point t) {
    auto st = session_.capture();
    st.requestBeatAtTime(b.count(), to_link_time<Clock>(t), options_.quantum.count());
    session_.commit(st);
    follow();  // the beats jumped: the metronome moves there
  }

  /// Whether the metronome is on the session's grid (running, and playing with start_stop).
  bool following() const noexcept { return following_; }
  const follower_options& options() const noexcept { return options_; }
  /// Times the metronome was re-timed onto the session's timeline (sync), over the follower's life.
  std::int64_t syncs() const noexcept { return syncs_; }

 private:
  asio::awaitable<void> loop(std::shared_ptr<const bool> alive) {
    const auto cs = co_await asio::this_coro::cancellation_state;
    for (;;) {
      follow();
      timer_.expires_after(options_.resync);
      co_await timer_.async_wait(tactus::detail::as_tuple(asio::use_awaitable));
      // Woken by the period or by a change (a cancelled wait); ended by stop or cancellation.
      if (!*alive || cs.cancelled() != asio::cancellation_type::none) co_return;
    }
  }

  // Reads the session and moves the metronome onto it.
  void follow() {
    if (!running_) return;
    auto st = session_.capture();
    const auto now = Clock::now();
    const double q = options_.quantum.count();
    const bool playing = options_.start_stop ? st.isPlaying() : true;
    if (playing && !following_) {
      auto from = now;
      if (options_.start_stop) {
        // Beat 0 where the session starts (every follower of a session does this on a start,
        // as Link's examples do: alone it is the start time, with peers the next phase 0).
        st.requestBeatAtStartPlayingTime(0.0, q);
        session_.commit(st);
        // Nothing plays before beat 0: with peers it may fall after the start (quantized).
        const auto start =
            std::max(from_link_time<Clock>(st.timeForIsPlaying()), from_link_time<Clock>(st.timeAtBeat(0.0, q)));
        // A start a little in the past (heard late, from a peer) is played from its beat, late;
        // one longer ago (joining a session that plays) from now on.
        const auto tick =
            std::chrono::duration_cast<duration>(bpm(st.tempo()).period() / metro_.subdivision().ticks_per_beat());
        if (start >= now - tick) from = start;
      }
      metro_.relocate(session_timeline<Clock>(st, options_.quantum, from), from);
      metro_.resume(from);
      following_ = true;
      ++syncs_;
    } else if (!playing && following_) {
      metro_.pause();
      following_ = false;
    } else if (playing) {
      const auto t = session_timeline<Clock>(st, options_.quantum, now);
      const auto& current = metro_.timeline();
      const auto tick = metro_.subdivision().tick_length();
      const auto moved = t.beat_at(now) - current.beat_at(now);
      if (moved * 2 >= tick || moved * -2 >= tick) {
        // The beats jumped (a requested beat, a restart, a session joined): move there.
        metro_.relocate(t, now);
        ++syncs_;
        return;
      }
      const auto off = t.time_at(t.anchor_beat()) - current.time_at(t.anchor_beat());
      if (t.tempo() != current.tempo() || std::chrono::abs(off) > std::chrono::microseconds(2)) {
        metro_.sync(t);
        ++syncs_;
      }
    }
  }

  session_type& session_;
  metronome_type& metro_;
  follower_options options_;
  asio::basic_waitable_timer<Clock> timer_;
  // One-slot event; the int carries nothing (Asio 1.22 cannot instantiate void(error_code) alone).
  tactus::detail::channel<void(std::error_code, int)> stop_;
  typename session_type::listener_id listener_{};
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::int64_t syncs_ = 0;
  bool running_ = false;
  bool following_ = false;
};

/// A follower on std::chrono::steady_clock.
using follower = basic_follower<>;

}  // namespace tactus::link
