// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/clock_estimator.hpp>
#include <tactus/midi/message.hpp>

#include <array>
#include <chrono>
#include <cstddef>
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
//
// Repeated and missing messages (JACK2 replays a late client's whole cycle, stamp and all; a
// capture can lose a CLOCK). Counted in repeats() and inferred():
//  - a START, CONTINUE, STOP or Song Position Pointer identical to one already received with the
//    same timestamp is a repeat and is ignored; so are the messages after it that replay the
//    rest of that cycle in order (a replayed [START, CLOCK] drops both);
//  - a CLOCK with the same timestamp as the previous CLOCK is a repeat when the estimator's fit
//    leaves no room for a pulse there (pulse_kind::repeat: locked, jitter under a sixth of the
//    period, the pulse more than half a period early); the rest of the cycle is then matched
//    as above. Without such a fit (before lock_pulses pulses after START from silence, after a
//    gap or a tempo change, or at a jitter that large) it is counted, as pulses bunched by a
//    stall must be: a replayed cycle that begins with a CLOCK then moves the position one pulse;
//  - a missing CLOCK: the estimator counts it when the interval is 1.5..2.5 periods of a fit of at
//    least 8 pulses, the previous pulse was on the line, and the position on the line is within
//    0.3 pulse of the same count (pulse_kind::dropout; likewise up to max_dropout missing in a
//    row). Otherwise the pulse is taken as the next one and the position falls one behind.
// Stamps are compared exactly: the follower is given them as the input made them.

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
  /// message was one of those (a repeat too: it is ignored and counted in repeats()).
  bool on_message(const message& m, time_point t) noexcept {
    switch (m.type()) {
      case message_type::clock:
      case message_type::start:
      case message_type::continue_:
      case message_type::stop:
      case message_type::song_position: break;
      default: return false;
    }
    if (replayed(m, t)) {
      ++repeats_;
      return true;
    }
    switch (m.type()) {
      case message_type::clock:
        if (!on_clock(t)) {
          ++repeats_;
          cycle_.replaying_clock();
        } else {
          cycle_.add(key_of(m));
        }
        return true;
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

  /// Messages ignored as repeats of a cycle delivered twice (see the header comment): the song
  /// position, the tempo and the state are as if they had not come.
  std::uint64_t repeats() const noexcept { return repeats_; }
  /// Missing CLOCKs counted from timing (pulse_kind::dropout): the pulse count went past them,
  /// while stopped too. A later re-count as a tempo change does not take them back.
  std::uint64_t inferred() const noexcept { return inferred_; }

 private:
  // The messages received with one timestamp, in order, to recognise that cycle delivered again.
  // Keys are the bytes of the message (the handled ones are 1 to 3 bytes); fixed size, no
  // allocation: a cycle with more messages than that is followed only as far as it fits.
  struct cycle {
    static constexpr std::size_t capacity = 16;
    std::optional<time_point> stamp;
    std::array<std::uint32_t, capacity> keys{};
    std::size_t size = 0;
    std::size_t cursor = 0;  // while replaying: the index of the next message expected
    bool replaying = false;

    void add(std::uint32_t key) noexcept {
      replaying = false;
      if (size < capacity) keys[size++] = key;
    }
    // A CLOCK judged a repeat: the cycle is being replayed from its first CLOCK on.
    void replaying_clock() noexcept {
      for (std::size_t i = 0; i < size; ++i)
        if (keys[i] == clock_key) {
          replaying = true;
          cursor = i + 1;
          return;
        }
    }
  };
  static constexpr std::uint32_t clock_key = (1u << 24) | (0xF8u << 16);
  static std::uint32_t key_of(const message& m) noexcept {
    std::uint32_t k = std::uint32_t(m.size()) << 24;
    const auto b = m.bytes();
    for (std::size_t i = 0; i < b.size() && i < 3; ++i) k |= std::uint32_t(b[i]) << (16 - 8 * i);
    return k;
  }

  // True if `m` at `t` repeats a message of the cycle stamped `t`: the next one of a replay in
  // progress, or a transport message already received in it (a CLOCK alone is left to the
  // estimator's timing). Otherwise records it (CLOCKs once the estimator has counted them).
  bool replayed(const message& m, time_point t) noexcept {
    const std::uint32_t key = key_of(m);
    if (cycle_.stamp != t) {
      cycle_ = {};
      cycle_.stamp = t;
    } else if (cycle_.replaying && cycle_.cursor < cycle_.size && cycle_.keys[cycle_.cursor] == key) {
      ++cycle_.cursor;
      return true;
    } else if (m.type() != message_type::clock) {
      for (std::size_t i = 0; i < cycle_.size; ++i)
        if (cycle_.keys[i] == key) {
          cycle_.replaying = true;
          cycle_.cursor = i + 1;
          return true;
        }
    }
    if (m.type() != message_type::clock) cycle_.add(key);
    return false;
  }

  // False if the estimator took the CLOCK for a repeat (nothing changed then).
  bool on_clock(time_point t) noexcept {
    const std::int64_t before = estimator_.pulse_count();
    const pulse_info p = estimator_.on_pulse(t);
    if (p.kind == pulse_kind::repeat) return false;
    if (p.kind == pulse_kind::dropout) inferred_ += std::uint64_t(p.index - before);
    last_clock_ = t;
    if (state_ == transport_state::lost) state_ = before_lost_;
    // While stopped the count runs on in the estimator (it tracks the tempo) but the song
    // position stays: CONTINUE puts it back.
    return true;
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
  cycle cycle_;
  std::uint64_t repeats_ = 0;
  std::uint64_t inferred_ = 0;
};

}  // namespace tactus::midi
