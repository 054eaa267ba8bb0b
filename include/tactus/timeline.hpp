// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/beats.hpp>
#include <tactus/meter.hpp>
#include <tactus/tempo.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>

// A tempo timeline: the straight line that maps beats to clock time, anchored at one
// (time, beat) point and sloped by a tempo. Every conversion is computed from the anchor, so no
// error accumulates however long it runs; a tempo change makes a new timeline anchored where
// the change happens, so the beat position stays continuous (the semantics of SuperCollider's
// TempoClock and Ableton Link's Timeline). The metronome schedules from one of these, and
// external sources (MIDI clock, Link) hand it theirs. Positions are exact (beats.hpp); times
// are the Clock's own integer durations.

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

  /// The clock time of beat position `b`, rounded to the nearest tick of Clock::duration;
  /// time_point::min()/max() when it lies beyond what the clock can hold.
  time_point time_at(beats b) const noexcept {
    const double units = static_cast<double>((b - anchor_beat_).units());
    const std::chrono::duration<double> offset(units * (60.0 / beats::per_beat) / tempo_.value());
    const auto since_epoch = std::chrono::duration<double, typename duration::period>(anchor_time_.time_since_epoch()) +
                             std::chrono::duration<double, typename duration::period>(offset);
    constexpr double top = static_cast<double>(duration::max().count()) * 0.999;
    if (since_epoch.count() >= top) return time_point::max();
    if (since_epoch.count() <= -top) return time_point::min();
    return anchor_time_ + std::chrono::round<duration>(offset);
  }

  /// The beat position at time `t`, to the nearest unit (1/beats::per_beat).
  beats beat_at(time_point t) const noexcept {
    const std::chrono::duration<double> dt = t - anchor_time_;
    const double units = dt.count() * tempo_.value() * (beats::per_beat / 60.0);
    const auto u = static_cast<beats::rep>(units >= 0 ? units + 0.5 : units - 0.5);
    return anchor_beat_ + beats::from_units(u);
  }

  /// The same timeline at a new tempo from time `at` on. The new anchor is the position at `at`
  /// and its time on this timeline, so every position up to there keeps its time.
  basic_timeline with_tempo(bpm new_tempo, time_point at) const noexcept {
    const beats b = beat_at(at);
    return basic_timeline(new_tempo, time_at(b), b);
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
    auto k = ceil_div(beat_at(t) - phase, quantum);
    // beat_at rounds to a unit; check the neighbours on the clock's own integer grid.
    if (time_at(phase + quantum * (k - 1)) >= t) k -= 1;
    else if (time_at(phase + quantum * k) < t) k += 1;
    return phase + quantum * k;
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
