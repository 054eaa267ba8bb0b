// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/clock_estimator.hpp>
#include <tactus/midi/message.hpp>

#include <chrono>
#include <cstdint>
#include <optional>

// The transport of a MIDI clock follower, as pure logic: feed it the realtime messages of the
// source (CLOCK, START, CONTINUE, STOP, Song Position Pointer) with their arrival times, and it
// tracks stopped / playing / lost, the song position in pulses (bar:beat:pulse) and, through
// its clock_estimator, tempo and phase. It does no I/O and owns no thread: the follower that
// drives it from the MIDI input decides when to call check_lost().
//
//     tactus::midi::clock_transport<> tr;
//     tr.on_message(msg, stamp);               // every message from the clock source
//     tr.check_lost(clock::now());             // from a timer, e.g. every few pulse periods
//     if (tr.state() == tactus::midi::transport_state::playing) use(tr.estimator().beat_time(b));

namespace tactus::midi {

enum class transport_state : std::uint8_t {
  stopped,  ///< after STOP (or before any START/CONTINUE); the song position stays put
  playing,  ///< after START or CONTINUE; every CLOCK advances the position by one pulse
  lost,     ///< no CLOCK for longer than the timeout; the next CLOCK restores the state before
};

/// A position in bar:beat:pulse, all 0-based (the first downbeat is 0:0:0).
struct song_position {
  std::int64_t bar = 0;
  int beat = 0;   ///< 0..beats_per_bar-1
  int pulse = 0;  ///< 0..23
  friend bool operator==(const song_position&, const song_position&) = default;
};

struct clock_transport_config {
  clock_estimator_config estimator{};
  /// Beats (quarter notes) per bar, for song_position. >= 1.
  int beats_per_bar = 4;
  /// Whether Song Position Pointer messages move the position (some setups ignore them).
  bool honour_song_position = true;
  /// The clock is lost after this many beats at the last estimated tempo without a CLOCK...
  double lost_after_beats = 2.0;
  /// ...or after this long when there is no tempo yet.
  std::chrono::nanoseconds lost_without_tempo{std::chrono::seconds(1)};
};

/// Thread-safe: no (one thread feeds and queries it). Realtime-safe: yes (no allocation).
template <class Clock = std::chrono::steady_clock>
class clock_transport {
 public:
  using clock = Clock;
  using time_point = typename Clock::time_point;

  clock_transport() noexcept : clock_transport(clock_transport_config{}) {}
  explicit clock_transport(clock_transport_config config) noexcept : config_(config), estimator_(config.estimator) {
    if (config_.beats_per_bar < 1) config_.beats_per_bar = 1;
  }

  /// One message from the clock source, arrived at `t`. CLOCK, START, CONTINUE, STOP and
  /// Song Position Pointer are handled; anything else is ignored. Returns true if the
  /// message was one of those.
  bool on_message(const message& m, time_point t) noexcept {
    switch (m.type()) {
      case message_type::clock: on_clock(t); return true;
      case message_type::start:
        // The next CLOCK is the first downbeat.
        stopped_at_ = 0;
        estimator_.on_start();
        set_state(transport_state::playing, t);
        return true;
      case message_type::continue_:
        estimator_.set_next_pulse(stopped_at_);
        set_state(transport_state::playing, t);
        return true;
      case message_type::stop:
        if (playing()) stopped_at_ = estimator_.pulse_count();
        set_state(transport_state::stopped, t);
        return true;
      case message_type::song_position:
        // Only meaningful while stopped (the spec's rule); one MIDI beat is a sixteenth = 6 pulses.
        if (config_.honour_song_position && !playing()) stopped_at_ = std::int64_t(m.song_position_value()) * 6;
        return true;
      default: return false;
    }
  }

  /// Declares the clock lost if no CLOCK came for the timeout (lost_after_beats at the last
  /// tempo). Returns true exactly when this call made it lost. Call it from a timer; `now` on
  /// the same clock as the message timestamps.
  bool check_lost(time_point now) noexcept {
    if (state_ == transport_state::lost || !last_clock_) return false;
    if (now - *last_clock_ <= timeout()) return false;
    before_lost_ = state_;
    state_ = transport_state::lost;
    return true;
  }

  /// The current timeout: lost_after_beats at the estimated tempo, or lost_without_tempo.
  std::chrono::nanoseconds timeout() const noexcept {
    if (const auto p = estimator_.pulse_period())
      return std::chrono::duration_cast<std::chrono::nanoseconds>(*p * (config_.lost_after_beats * pulses_per_beat));
    return config_.lost_without_tempo;
  }

  transport_state state() const noexcept { return state_; }
  /// Playing, or lost while playing.
  bool playing() const noexcept {
    return state_ == transport_state::playing ||
           (state_ == transport_state::lost && before_lost_ == transport_state::playing);
  }

  /// The index of the pulse the song is at: the last CLOCK received while playing (pulse 0
  /// is the first CLOCK after START), or, while stopped, the pulse CONTINUE will resume at.
  /// -1 after START before the first CLOCK.
  std::int64_t pulse() const noexcept { return playing() ? estimator_.pulse_count() - 1 : stopped_at_; }

  /// pulse() as bar:beat:pulse (0-based; before the first CLOCK, 0:0:0).
  song_position position() const noexcept {
    const std::int64_t p = std::max<std::int64_t>(0, pulse());
    const std::int64_t per_bar = std::int64_t(pulses_per_beat) * config_.beats_per_bar;
    return {p / per_bar, int((p % per_bar) / pulses_per_beat), int(p % pulses_per_beat)};
  }

  /// Tempo and phase. Pulse indices are song positions while playing (beat_time(b) is the time
  /// of beat b of the song); the tempo is tracked while stopped too, if the source sends clock.
  const clock_estimator<Clock>& estimator() const noexcept { return estimator_; }

 private:
  void on_clock(time_point t) noexcept {
    last_clock_ = t;
    if (state_ == transport_state::lost) state_ = before_lost_;
    estimator_.on_pulse(t);
    // While stopped the count runs on in the estimator (it tracks the tempo) but the song
    // position stays: CONTINUE puts it back.
  }
  void set_state(transport_state s, time_point t) noexcept {
    if (last_clock_) last_clock_ = t;  // a sign of life: the timeout runs from here
    state_ = s;
  }

  clock_transport_config config_;
  clock_estimator<Clock> estimator_;
  transport_state state_ = transport_state::stopped;
  transport_state before_lost_ = transport_state::stopped;
  std::int64_t stopped_at_ = 0;  // song position (next pulse) while stopped
  std::optional<time_point> last_clock_;
};

}  // namespace tactus::midi
