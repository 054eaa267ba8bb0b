// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/beats.hpp>

#include <stdexcept>
#include <string>

// The shape of the grid: how many beats make a bar (meter) and how many ticks make a beat
// (subdivision). Both check their arguments where they are written.

namespace tactus {

/// Beats per bar: 4 for 4/4, 3 for 3/4. Must be >= 1, else std::invalid_argument.
class meter {
 public:
  constexpr meter() noexcept = default;
  constexpr explicit meter(int beats_per_bar) : beats_per_bar_(beats_per_bar) {
    if (beats_per_bar < 1) throw std::invalid_argument("tactus::meter: beats per bar must be >= 1");
  }
  constexpr int beats_per_bar() const noexcept { return beats_per_bar_; }
  constexpr beats bar_length() const noexcept { return beats(beats_per_bar_); }
  friend constexpr bool operator==(meter, meter) = default;

 private:
  int beats_per_bar_ = 4;
};

/// Ticks per beat: 1 ticks on every beat, 4 on every sixteenth (in 4/4), 24 at MIDI clock rate.
/// Must be in 1..960 and divide beats::per_beat, so that every tick is an exact position (every
/// count up to 16, and 18, 20, 24, 28, 32, 36, 48, 64, 96, 128, 192, 256, 384, 480, 960, ...);
/// else std::invalid_argument.
class subdivision {
 public:
  constexpr subdivision() noexcept = default;
  constexpr explicit subdivision(int ticks_per_beat) : ticks_(ticks_per_beat) {
    if (ticks_per_beat < 1 || ticks_per_beat > 960)
      throw std::invalid_argument("tactus::subdivision: ticks per beat must be in 1..960, got " +
                                  std::to_string(ticks_per_beat));
    if (beats::per_beat % ticks_per_beat != 0)
      throw std::invalid_argument("tactus::subdivision: " + std::to_string(ticks_per_beat) +
                                  " ticks per beat do not fall on exact positions (use a divisor of " +
                                  std::to_string(beats::per_beat) + ", e.g. 12, 16, 24, 96 or 960)");
  }
  constexpr int ticks_per_beat() const noexcept { return ticks_; }
  /// The length of one tick, exact.
  constexpr beats tick_length() const noexcept { return beats::from_units(beats::per_beat / ticks_); }
  friend constexpr bool operator==(subdivision, subdivision) = default;

 private:
  int ticks_ = 1;
};

}  // namespace tactus
