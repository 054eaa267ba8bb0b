// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/beats.hpp>
#include <tactus/tempo.hpp>

#include <chrono>

// What a wait for a position completes with (metronome::at, after): the position reached, when
// it was due on the timeline, and when the waiter was woken.

namespace tactus {

/// A position of a metronome's timeline, reached. Value type.
template <class Clock = std::chrono::steady_clock>
struct basic_moment {
  using time_point = typename Clock::time_point;
  using duration = typename Clock::duration;

  /// The position waited for, exact.
  beats position{};
  /// Its time on the timeline when it was reached (after every tempo change made meanwhile).
  time_point scheduled{};
  /// When the wait completed (Clock::now() when its timer woke).
  time_point fired{};
  /// The tempo in force there.
  bpm tempo{120};

  duration lateness() const noexcept { return fired - scheduled; }
};

using moment = basic_moment<>;

}  // namespace tactus
