// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/tempo.hpp>

#include <chrono>
#include <cstdint>

// What a metronome hands to every callback and awaiting coroutine on each grid point: where in
// the music it is (bar, beat, tick), when it was due, when it actually woke, and whether grid
// points were skipped to get here.

namespace tactus {

/// One grid point of a metronome (a beat, or a tick when subdivided). Value type.
template <class Clock = std::chrono::steady_clock>
struct basic_beat {
  using time_point = typename Clock::time_point;
  using duration = typename Clock::duration;

  /// Grid points since run() began, fired or skipped: 0, 1, 2, ...
  std::int64_t index = 0;
  /// Musical position in beats (a tick of a subdivided beat is fractional).
  beats position{};
  /// Bar number (0-based), beat within the bar (0-based), tick within the beat (0-based).
  std::int64_t bar = 0;
  int beat_in_bar = 0;
  int tick = 0;
  /// The exact grid time of this point, computed from the timeline's anchor.
  time_point scheduled{};
  /// When the metronome woke to deliver it (Clock::now() at wake-up).
  time_point fired{};
  /// Grid points skipped just before this one because the metronome ran late (skip policy).
  std::int64_t skipped = 0;
  /// The tempo in force at this point.
  bpm tempo{120};

  duration lateness() const noexcept { return fired - scheduled; }
  /// The first tick of a beat.
  bool is_beat() const noexcept { return tick == 0; }
  /// The first tick of the first beat of a bar.
  bool is_downbeat() const noexcept { return tick == 0 && beat_in_bar == 0; }
};

using beat = basic_beat<>;

/// What a metronome does when it wakes later than a grid point (callbacks that overran, a
/// stalled executor, a suspended laptop).
enum class overrun_policy {
  /// Drop the missed grid points and resume on the grid: no burst, no drift. The next beat
  /// delivered reports how many were skipped. The default.
  skip,
  /// Deliver every missed grid point, late and back to back, then carry on.
  catch_up,
};

/// When set_tempo takes effect.
enum class tempo_change {
  /// From the current beat (inside a callback) or from this instant (between beats).
  now,
  /// From the next bar line.
  next_bar,
};

}  // namespace tactus
