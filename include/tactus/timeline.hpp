// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/tempo.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>

// A tempo timeline: the straight line that maps beats to clock time, anchored at one
// (time, beat) point and sloped by a tempo. Every conversion is computed from the anchor, so no
// error accumulates however long it runs; a tempo change makes a new timeline anchored where
// the change happens, so the beat position stays continuous (the semantics of SuperCollider's
// TempoClock and Ableton Link's Timeline). The metronome schedules from one of these, and
// external sources (MIDI clock, Link) hand it theirs.

namespace tactus {

/// An immutable beats <-> time mapping on `Clock`. Thread-safe: value type. Realtime-safe: yes.
template <class Clock = std::chrono::steady_clock>
class basic_timeline {
 public:
  using clock = Clock;
  using time_point = typename Clock::time_point;
  using duration = typename Clock::duration;

  /// The timeline on which `anchor_beat` falls at `anchor_time`, at `tempo`.
  constexpr basic_timeline(bpm tempo, time_point anchor_time, beats anchor_beat = beats{0}) noexcept
      : tempo_(tempo), anchor_time_(anchor_time), anchor_beat_(anchor_beat) {}

  constexpr bpm tempo() const noexcept { return tempo_; }
  constexpr time_point anchor_time() const noexcept { return anchor_time_; }
  constexpr beats anchor_beat() const noexcept { return anchor_beat_; }

  /// The clock time of beat position `b`, rounded to the nearest tick of Clock::duration.
  time_point time_at(beats b) const noexcept {
    const std::chrono::duration<double> offset((b - anchor_beat_).count() * 60.0 / tempo_.value());
    return anchor_time_ + std::chrono::round<duration>(offset);
  }

  /// The (fractional) beat position at time `t`.
  beats beat_at(time_point t) const noexcept {
    const std::chrono::duration<double> dt = t - anchor_time_;
    return anchor_beat_ + beats(dt.count() * tempo_.value() / 60.0);
  }

  /// The same timeline at a new tempo from time `at` on: beat_at(at) is unchanged.
  basic_timeline with_tempo(bpm new_tempo, time_point at) const noexcept {
    return basic_timeline(new_tempo, at, beat_at(at));
  }

  /// The same timeline at a new tempo from beat position `at` on: time_at(at) is unchanged.
  /// Used for changes scheduled on the grid (at a beat or a bar line), anchored exactly there.
  basic_timeline with_tempo_at_beat(bpm new_tempo, beats at) const noexcept {
    return basic_timeline(new_tempo, time_at(at), at);
  }

  /// The first position at or after time `t` that is `phase` plus a whole multiple of
  /// `quantum` beats (quantum > 0). next_multiple(t, beats{4}) is the next bar line in 4/4.
  /// Decided in the time domain, so a grid point whose time is exactly `t` is that point.
  beats next_multiple(time_point t, beats quantum, beats phase = beats{0}) const noexcept {
    const double q = quantum.count();
    double k = std::ceil((beat_at(t) - phase).count() / q);
    // beat_at rounds; check the neighbours on the clock's own integer grid.
    if (time_at(phase + beats((k - 1) * q)) >= t) k -= 1;
    else if (time_at(phase + beats(k * q)) < t) k += 1;
    return phase + beats(k * q);
  }

  /// The first whole beat at or after `t`.
  beats next_beat(time_point t) const noexcept { return next_multiple(t, beats{1}); }

  /// The first bar line at or after `t` (bars start at whole multiples of the bar length).
  beats next_bar(time_point t, meter m = meter{}) const noexcept { return next_multiple(t, m.bar_length()); }

  /// The first tick of `s` at or after `t`.
  beats next_tick(time_point t, subdivision s) const noexcept { return next_multiple(t, s.tick_length()); }

  friend bool operator==(const basic_timeline&, const basic_timeline&) = default;

 private:
  bpm tempo_;
  time_point anchor_time_;
  beats anchor_beat_;
};

using timeline = basic_timeline<>;

}  // namespace tactus
