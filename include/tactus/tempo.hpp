// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <chrono>
#include <cmath>
#include <compare>
#include <stdexcept>
#include <string>

// The musical value types every other header speaks: tempo (bpm), beat positions and
// durations (beats), meter (beats per bar) and subdivision (ticks per beat). They check
// their arguments on construction, so a bad value fails where it is written, not a beat later.

namespace tactus {

/// Tempo in beats per minute. Constructed from a double; finite and > 0, else
/// std::invalid_argument. Thread-safe: value type. Realtime-safe: yes (when valid).
class bpm {
 public:
  constexpr explicit bpm(double beats_per_minute) : value_(beats_per_minute) {
    if (!(beats_per_minute > 0.0) || !(beats_per_minute <= max_value))
      throw std::invalid_argument("tactus::bpm: tempo must be finite and in (0, 1e6] beats per minute, got " +
                                  std::to_string(beats_per_minute));
  }
  constexpr double value() const noexcept { return value_; }
  /// The duration of one beat, 60 / bpm seconds, unrounded.
  constexpr std::chrono::duration<double> period() const noexcept {
    return std::chrono::duration<double>(60.0 / value_);
  }
  /// The tempo whose beat lasts `d`; d must be > 0.
  template <class Rep, class Period>
  static bpm from_period(std::chrono::duration<Rep, Period> d) {
    return bpm(60.0 / std::chrono::duration<double>(d).count());
  }
  friend constexpr auto operator<=>(bpm, bpm) = default;

  static constexpr double max_value = 1e6;

 private:
  double value_;
};

/// A beat position on a timeline, or a distance between two positions, in beats (quarter notes
/// by convention). A plain double inside: integral positions are exact, and the timeline never
/// accumulates them, it computes every position from an anchor.
class beats {
 public:
  constexpr beats() noexcept = default;
  constexpr explicit beats(double count) noexcept : count_(count) {}
  constexpr double count() const noexcept { return count_; }

  friend constexpr beats operator+(beats a, beats b) noexcept { return beats(a.count_ + b.count_); }
  friend constexpr beats operator-(beats a, beats b) noexcept { return beats(a.count_ - b.count_); }
  friend constexpr beats operator*(beats a, double k) noexcept { return beats(a.count_ * k); }
  friend constexpr beats operator*(double k, beats a) noexcept { return beats(a.count_ * k); }
  friend constexpr double operator/(beats a, beats b) noexcept { return a.count_ / b.count_; }
  constexpr beats& operator+=(beats b) noexcept {
    count_ += b.count_;
    return *this;
  }
  constexpr beats& operator-=(beats b) noexcept {
    count_ -= b.count_;
    return *this;
  }
  friend constexpr auto operator<=>(beats, beats) = default;

 private:
  double count_ = 0.0;
};

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

/// Ticks per beat: 1 fires on every beat, 4 on every sixteenth (in 4/4), 24 at MIDI clock rate.
/// Must be in 1..960, else std::invalid_argument.
class subdivision {
 public:
  constexpr subdivision() noexcept = default;
  constexpr explicit subdivision(int ticks_per_beat) : ticks_(ticks_per_beat) {
    if (ticks_per_beat < 1 || ticks_per_beat > 960)
      throw std::invalid_argument("tactus::subdivision: ticks per beat must be in 1..960");
  }
  constexpr int ticks_per_beat() const noexcept { return ticks_; }
  constexpr beats tick_length() const noexcept { return beats(1.0 / ticks_); }
  friend constexpr bool operator==(subdivision, subdivision) = default;

 private:
  int ticks_ = 1;
};

}  // namespace tactus
