// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>

// How a PWM driver turns a value into a pulse width. A hobby servo takes a pulse every 20 ms
// (50 Hz) whose width, 500 to 2500 µs on most, sets its angle, 0 to 180 degrees: the default.
// An LED takes a level 0..1 as the fraction of the period the output is on:
//
//   const auto arm = tactus::sinks::pulse_map{};                         // 0..180 deg: 500..2500 us, 50 Hz
//   const auto sg90 = tactus::sinks::pulse_map::servo(0, 180, 1000us, 2000us);  // a narrower servo
//   const auto lamp = tactus::sinks::pulse_map::level(1ms);                  // 1 kHz, duty = level

namespace tactus::sinks {

/// A linear map from values [lo, hi] to pulse widths [min_pulse, max_pulse] (max_pulse may be
/// the smaller: a servo turning the other way), repeated every `period`. Value type.
struct pulse_map {
  double lo = 0;
  double hi = 180;
  std::chrono::nanoseconds min_pulse{500'000};
  std::chrono::nanoseconds max_pulse{2'500'000};
  std::chrono::nanoseconds period{20'000'000};

  /// A servo's map: angles [lo, hi] to [min, max] at `period`.
  static pulse_map servo(double lo = 0, double hi = 180, std::chrono::nanoseconds min = std::chrono::microseconds(500),
                         std::chrono::nanoseconds max = std::chrono::microseconds(2500),
                         std::chrono::nanoseconds period = std::chrono::milliseconds(20)) {
    return pulse_map{lo, hi, min, max, period};
  }
  /// An LED's: levels 0..1 to a duty cycle of 0..period.
  static pulse_map level(std::chrono::nanoseconds period = std::chrono::milliseconds(1)) {
    return pulse_map{0, 1, std::chrono::nanoseconds{0}, period, period};
  }

  /// The pulse width for `v` (held within [lo, hi]), to the nearest nanosecond.
  std::chrono::nanoseconds pulse(double v) const noexcept {
    const double x = (std::clamp(v, lo, hi) - lo) / (hi - lo);
    const double ns =
        static_cast<double>(min_pulse.count()) + x * static_cast<double>(max_pulse.count() - min_pulse.count());
    return std::chrono::nanoseconds(std::llround(ns));
  }

  /// Throws std::invalid_argument, naming `who`, unless lo < hi (finite), period > 0 and both
  /// pulses lie within [0, period].
  void check(const char* who) const {
    auto fits = [&](std::chrono::nanoseconds p) { return p.count() >= 0 && p <= period; };
    if (!std::isfinite(lo) || !std::isfinite(hi) || !(lo < hi))
      throw std::invalid_argument(std::string(who) + ": a pulse_map needs finite lo < hi");
    if (period.count() <= 0 || !fits(min_pulse) || !fits(max_pulse))
      throw std::invalid_argument(std::string(who) + ": a pulse_map needs period > 0 and pulses within [0, period]");
  }
};

}  // namespace tactus::sinks
