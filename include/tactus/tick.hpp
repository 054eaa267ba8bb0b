// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/beats.hpp>
#include <tactus/tempo.hpp>

#include <chrono>
#include <cstdint>

// What a metronome hands to every callback and awaiting coroutine on each grid point (a tick):
// where in the music it is (bar, beat, tick within the beat), when it was due, when it actually
// woke, and whether ticks were skipped to get here.

namespace tactus {

/// One grid point of a metronome: a tick, which is a beat when the metronome is not subdivided
/// (see subdivision). Value type.
template <class Clock = std::chrono::steady_clock>
struct basic_tick {
  using time_point = typename Clock::time_point;
  using duration = typename Clock::duration;

  /// Ticks since run() began, fired or skipped: 0, 1, 2, ...
  std::int64_t index = 0;
  /// Musical position, exact (a tick of a subdivided beat is fractional).
  beats position{};
  /// Bar number (0-based), beat within the bar (0-based), tick within the beat (0-based).
  std::int64_t bar = 0;
  int beat_in_bar = 0;
  int tick_in_beat = 0;
  /// The exact grid time of this tick, computed from the timeline's anchor.
  time_point scheduled{};
  /// When the metronome woke to deliver it (Clock::now() at wake-up).
  time_point fired{};
  /// Ticks skipped just before this one because the metronome ran late (overrun_policy::skip).
  std::int64_t skipped = 0;
  /// The tempo in force at this tick.
  bpm tempo{120};

  duration lateness() const noexcept { return fired - scheduled; }
  /// The first tick of a beat.
  bool is_beat() const noexcept { return tick_in_beat == 0; }
  /// The first tick of the first beat of a bar.
  bool is_downbeat() const noexcept { return tick_in_beat == 0 && beat_in_bar == 0; }
};

using tick = basic_tick<>;

}  // namespace tactus
