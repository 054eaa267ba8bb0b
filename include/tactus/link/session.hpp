// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/beats.hpp>
#include <tactus/detail/waiter_list.hpp>
#include <tactus/tempo.hpp>
#include <tactus/timeline.hpp>

// Link 3.1 (Debian 13's ableton-link-dev) compiles Asio under a name of its own: it defines `asio`
// as link_asio_1_28_0 around `#include <asio.hpp>`, for the copy of Asio it bundles. Debian's
// package bundles none, so that include reaches the system's Asio, which a translation unit can
// include only once (include guards): after tactus's own Asio headers, Link's name would be empty.
// So Asio comes whole first, as `asio`, and Link's name is made an alias of it: one Asio for
// both. Link 3.0 (Debian 12) uses `asio` itself and never sees the alias. CMake sets
// TACTUS_LINK_ASIO_NAMESPACE from the Link it finds; the default is Link 3.1's.
#include <asio.hpp>
#include <asio/system_timer.hpp>
#ifndef TACTUS_LINK_ASIO_NAMESPACE
#define TACTUS_LINK_ASIO_NAMESPACE link_asio_1_28_0
#endif
namespace TACTUS_LINK_ASIO_NAMESPACE = ::asio;
#include <ableton/Link.hpp>
#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/error.hpp>
#include <asio/post.hpp>

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <system_error>
#include <utility>
#include <vector>

// One Ableton Link peer for an application, on tactus's clock and executor. tactus::link is an
// optional part of tactus (target tactus::link, built when ableton-link-dev is found); Link itself
// is GPL-2.0-or-later, so a program that uses this header is bound by the GPL, while the rest of
// tactus stays BSL-1.0 and never needs it.
//
//     tactus::link::session link{io.get_executor(), tactus::bpm{120}};
//     tactus::metronome m{io.get_executor(), tactus::bpm{120}};
//     tactus::link::follower follow{link, m, {.quantum = tactus::beats{4}}};
//
// Link's own clock on Linux is CLOCK_MONOTONIC_RAW; std::chrono::steady_clock is CLOCK_MONOTONIC,
// which NTP may slew. Rather than convert between the two (sampling both, with the error of the
// sampling), the session instantiates ableton::BasicLink with a clock that reads `Clock` itself
// (link_clock below): Link's times are then Clock's times in microseconds, exactly, and with
// testing::manual_clock a session runs in virtual time. Peers measure each other's clocks, so
// the choice of clock is local and invisible to the session.

namespace tactus::link {

/// A Link clock (what ableton::BasicLink calls `Clock`: a micros() member) reading `Clock`.
/// Thread-safe: yes. Realtime-safe: yes.
template <class Clock>
struct link_clock {
  std::chrono::microseconds micros() const {
    return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch());
  }
};

/// `t` as a Link time (microseconds of Clock's epoch, rounded to the nearest).
template <class Clock>
std::chrono::microseconds to_link_time(typename Clock::time_point t) {
  return std::chrono::round<std::chrono::microseconds>(t.time_since_epoch());
}

/// A Link time as a time point of `Clock`.
template <class Clock>
typename Clock::time_point from_link_time(std::chrono::microseconds t) {
  return typename Clock::time_point(std::chrono::duration_cast<typename Clock::duration>(t));
}

/// The session's timeline, for a metronome: tempo and beat positions of `state` against
/// `quantum` (the magnitude of the beats is this peer's own; their phase against the quantum is
/// the session's). Anchored on the whole beat at or before `around`, at the time Link gives that
/// beat, so a grid point there is where Link puts it, to Link's microsecond.
template <class Clock, class SessionState>
basic_timeline<Clock> session_timeline(const SessionState& state, beats quantum, typename Clock::time_point around) {
  const double q = quantum.count();
  const double b = std::floor(state.beatAtTime(to_link_time<Clock>(around), q));
  return basic_timeline<Clock>(bpm(state.tempo()), from_link_time<Clock>(state.timeAtBeat(b, q)),
                               beats(static_cast<std::int64_t>(b)));
}

/// How a session begins.
struct session_options {
  /// Join the network at once (else call enable(true) later). A disabled session is a session
  /// of one, without any network traffic.
  bool enabled = true;
  /// Share start and stop with the peers that share them too (Link's start/stop sync).
  bool start_stop_sync = false;
};

/// What changed in the session (the reason a change waiter completed).
enum class session_event {
  peers,       ///< the number of peers
  tempo,       ///< the session tempo
  start_stop,  ///< playing or stopped
};

/// One Link peer on `Clock` (std::chrono::steady_clock, or testing::manual_clock for virtual
/// time, disabled). Link's callbacks run on Link's own thread; they hand off to the executor
/// with asio::post, which is fine there: that thread is Link's network thread, not a realtime
/// one, and a change is rare (a tempo, a start, a peer), so a post's allocation and lock never
/// touch audio. The handlers they post hold the session's shared state, not the session: a
/// session destroyed meanwhile leaves them nothing to do.
///
/// Thread-safe: peers(), enabled(), capture() and commit() from any thread (Link's own
/// guarantees for the app-thread calls); everything else on the executor. Realtime-safe: no
/// (use native().captureAudioSessionState() on an audio thread).
template <class Clock = std::chrono::steady_clock>
class basic_session {
 public:
  using clock_type = Clock;
  using time_point = typename Clock::time_point;
  using link_type = ableton::BasicLink<link_clock<Clock>>;
  /// Link's own session state: a snapshot to read and change in a local scope, then commit().
  using state_type = typename link_type::SessionState;
  using executor_type = asio::any_io_executor;
  using listener_id = std::size_t;

  /// A peer at `tempo` (the session's tempo if it starts one; a session it joins keeps its own).
  basic_session(executor_type ex, bpm tempo, session_options o = {})
      : s_(std::make_shared<shared>(ex)), link_(tempo.value()) {
    std::weak_ptr<shared> w = s_;
    // Link's thread: hand off, never block on the executor.
    link_.setNumPeersCallback([w](std::size_t) { shared::post_event(w, session_event::peers); });
    link_.setTempoCallback([w](double) { shared::post_event(w, session_event::tempo); });
    link_.setStartStopCallback([w](bool) { shared::post_event(w, session_event::start_stop); });
    link_.enableStartStopSync(o.start_stop_sync);
    if (o.enabled) link_.enable(true);
  }

  /// Leaves the session (Link's thread is joined); pending change waits complete with
  /// operation_aborted.
  ~basic_session() {
    // Under Link's callback mutex: once these return, no callback of ours runs again.
    link_.setNumPeersCallback([](std::size_t) {});
    link_.setTempoCallback([](double) {});
    link_.setStartStopCallback([](bool) {});
    s_->listeners_.clear();  // a change already posted reaches no listener now gone
    s_->waiters_.complete_all(asio::error::operation_aborted, session_event::peers);
  }

  basic_session(const basic_session&) = delete;
  basic_session& operator=(const basic_session&) = delete;

  executor_type get_executor() const { return s_->ex_; }

  /// Joins (true) or leaves (false) the network. Executor only (Link: not realtime-safe).
  void enable(bool on) { link_.enable(on); }
  /// Thread-safe.
  bool enabled() const { return link_.isEnabled(); }
  /// Shares start/stop with the peers that do too. Executor only.
  void enable_start_stop_sync(bool on) { link_.enableStartStopSync(on); }
  bool start_stop_sync() const { return link_.isStartStopSyncEnabled(); }
  /// Peers in the session besides this one. Thread-safe, realtime-safe.
  std::size_t peers() const { return link_.numPeers(); }

  /// A snapshot of the session (tempo, timeline, start/stop), in Clock's microseconds.
  /// Thread-safe (may block briefly: not on a realtime thread).
  state_type capture() const { return link_.captureAppSessionState(); }
  /// Makes `state`'s changes the session's (sent to the peers). capture() sees them at once;
  /// change listeners hear of a tempo or start/stop change later, from Link's thread.
  /// Thread-safe (may block briefly).
  void commit(state_type state) { link_.commitAppSessionState(std::move(state)); }

  /// The session tempo now.
  bpm tempo() const { return bpm(capture().tempo()); }
  /// The session's timeline against `quantum` around `t` (see session_timeline).
  basic_timeline<Clock> timeline(beats quantum, time_point t = Clock::now()) const {
    return session_timeline<Clock>(capture(), quantum, t);
  }

  /// Calls `f(session_event)` on the executor after every change Link reports (a change this
  /// peer committed too), in registration order. Returns an id for remove(). Executor only.
  listener_id on_change(std::function<void(session_event)> f) {
    s_->listeners_.push_back(std::make_shared<std::function<void(session_event)>>(std::move(f)));
    return s_->listeners_.size() - 1;
  }
  /// Unregisters a listener. Executor only.
  void remove(listener_id id) {
    if (id < s_->listeners_.size()) s_->listeners_[id].reset();
  }

  /// Waits for the next change Link reports. Signature void(std::error_code, session_event).
  /// The handler runs on its associated executor (default: the session's), never inline.
  /// Cancellable through its cancellation slot (every type; operation_aborted), and completed
  /// with operation_aborted when the session is destroyed.
  template <class CompletionToken>
  auto async_wait_change(CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(std::error_code, session_event)>(
        [s = s_](auto handler) { s->waiters_.add(std::move(handler), s->ex_); }, token);
  }

  /// Link itself, for what this class does not say (audio-thread capture, the clock).
  link_type& native() noexcept { return link_; }

 private:
  struct shared : std::enable_shared_from_this<shared> {
    explicit shared(executor_type ex) : ex_(std::move(ex)) {}

    // Link's thread. The weak reference: a session gone meanwhile leaves nothing to do.
    static void post_event(const std::weak_ptr<shared>& w, session_event e) {
      if (auto s = w.lock()) asio::post(s->ex_, [s, e] { s->deliver(e); });
    }

    // The executor.
    void deliver(session_event e) {
      // Index and own references: a listener may register or remove another.
      for (std::size_t i = 0; i < listeners_.size(); ++i)
        if (auto f = listeners_[i]) (*f)(e);
      waiters_.complete_all({}, e);
    }

    executor_type ex_;
    std::vector<std::shared_ptr<std::function<void(session_event)>>> listeners_;
    tactus::detail::waiter_list<session_event> waiters_;
  };

  std::shared_ptr<shared> s_;
  link_type link_;
};

/// A Link peer on std::chrono::steady_clock.
using session = basic_session<>;

}  // namespace tactus::link
