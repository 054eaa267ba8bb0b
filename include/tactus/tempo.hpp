// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/beats.hpp>
#include <tactus/detail/format.hpp>
#include <tactus/meter.hpp>

#include <chrono>
#include <compare>
#include <stdexcept>
#include <string>

// Tempo as a type: bpm. With beats.hpp (exact positions) and meter.hpp (meter, subdivision),
// which it includes, these are the musical value types every other header speaks. They check
// their arguments on construction, so a bad value fails where it is written, not a beat later.

namespace tactus {

/// Tempo in beats per minute, in [min_value, max_value] = [0.001, 1e6] (a beat of at most
/// 16.7 hours, at least 60 µs), else std::invalid_argument: a slower tempo's beat times would not
/// fit a clock's 64-bit nanoseconds for long. Thread-safe: value type. Realtime-safe: yes.
class bpm {
 public:
  static constexpr double min_value = 1e-3;
  static constexpr double max_value = 1e6;

  constexpr explicit bpm(double beats_per_minute) : value_(beats_per_minute) {
    if (!(beats_per_minute >= min_value) || !(beats_per_minute <= max_value))
      throw std::invalid_argument(
          "tactus::bpm: tempo must be in [0.001, 1e6] beats per minute (a beat of at "
          "most 16.7 hours), got " +
          detail::format_number(beats_per_minute));
  }
  constexpr double value() const noexcept { return value_; }
  /// The duration of one beat, 60 / bpm seconds, unrounded.
  constexpr std::chrono::duration<double> period() const noexcept {
    return std::chrono::duration<double>(60.0 / value_);
  }
  /// The tempo whose beat lasts `d`; std::invalid_argument when that is out of range.
  template <class Rep, class Period>
  static bpm from_period(std::chrono::duration<Rep, Period> d) {
    return bpm(60.0 / std::chrono::duration<double>(d).count());
  }
  friend constexpr auto operator<=>(bpm, bpm) = default;

 private:
  double value_;
};

}  // namespace tactus
