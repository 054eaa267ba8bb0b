// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/detail/format.hpp>

#include <cmath>
#include <compare>
#include <concepts>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

// Beat positions and distances, exact. A position is an integer count of 1/11'531'520 beat
// (the way Ableton Link's Beats counts micro-beats), so `a == b` means what it says, a tempo
// change at beat 16 happens at beat 16, and no comparison needs a tolerance. The unit divides
// evenly by every subdivision musicians use (2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 16, 24, 32, 48, 64,
// 96, 128, 192, 256, 384, 480, 960, ...), so every tick of such a grid is an exact position.
//
//     const tactus::beats bar_5{16};                       // beat 16, exactly
//     const tactus::beats triplet{1, 3};                   // a third of a beat, exactly
//     const tactus::beats swing = tactus::beats{0.55} * 0.5;   // from doubles: the nearest unit
//     const double edge = (bar_5 + triplet).count();       // back to double beats, at the API's edge

namespace tactus {

/// A beat position on a timeline, or a distance between two positions, in beats (quarter notes
/// by convention), held exactly as an integer number of units (`per_beat` units to a beat).
/// Range: about ±8e11 beats. Thread-safe: value type. Realtime-safe: yes.
class beats {
 public:
  using rep = std::int64_t;
  /// Units in one beat: 2^8 * 3^2 * 5 * 7 * 11 * 13, divisible by every integer 1..16 and by
  /// 18, 20, 24, 28, 32, 36, 48, 64, 96, 128, 192, 256, 384, 480, 960 among others.
  static constexpr rep per_beat = 11'531'520;
  /// The largest whole number of beats a position may hold (|count| beyond this is rejected).
  static constexpr rep max_whole = std::numeric_limits<rep>::max() / per_beat / 2;

  constexpr beats() noexcept = default;

  /// `n` whole beats, exactly. std::invalid_argument beyond ±max_whole.
  template <std::integral I>
  constexpr explicit beats(I n) : units_(checked_whole(static_cast<long double>(n)) * per_beat) {}

  /// The nearest unit to `b` beats. std::invalid_argument for NaN, infinity or beyond ±max_whole.
  template <std::floating_point F>
  constexpr explicit beats(F b) : units_(round_units(static_cast<double>(b))) {}

  /// `num / den` beats: exact when `den` divides per_beat * num (every den of the list above),
  /// else the nearest unit. std::invalid_argument when den == 0 or beyond the range.
  constexpr beats(rep num, rep den) : units_(fraction_units(num, den)) {}

  /// A position of `u` units (per_beat to a beat).
  static constexpr beats from_units(rep u) noexcept {
    beats b;
    b.units_ = u;
    return b;
  }

  /// The exact value, in units.
  constexpr rep units() const noexcept { return units_; }
  /// The value in beats, as a double (exact for whole beats and for every power-of-two fraction).
  constexpr double count() const noexcept { return static_cast<double>(units_) / per_beat; }

  /// The whole beats at or below this position (floor), and what remains (always >= 0).
  constexpr rep whole() const noexcept { return floor_div(units_, per_beat); }
  constexpr beats fraction() const noexcept { return from_units(units_ - whole() * per_beat); }

  friend constexpr beats operator+(beats a, beats b) noexcept { return from_units(a.units_ + b.units_); }
  friend constexpr beats operator-(beats a, beats b) noexcept { return from_units(a.units_ - b.units_); }
  friend constexpr beats operator-(beats a) noexcept { return from_units(-a.units_); }
  template <std::integral I>
  friend constexpr beats operator*(beats a, I k) noexcept {
    return from_units(a.units_ * static_cast<rep>(k));
  }
  template <std::integral I>
  friend constexpr beats operator*(I k, beats a) noexcept {
    return from_units(a.units_ * static_cast<rep>(k));
  }
  /// Scaled by a real factor, to the nearest unit (swing amounts, note lengths in percent).
  friend constexpr beats operator*(beats a, double k) { return beats(a.count() * k); }
  friend constexpr beats operator*(double k, beats a) { return beats(a.count() * k); }
  /// How many times `b` fits in `a`, as a real number (b != 0).
  friend constexpr double operator/(beats a, beats b) noexcept {
    return static_cast<double>(a.units_) / static_cast<double>(b.units_);
  }
  constexpr beats& operator+=(beats b) noexcept {
    units_ += b.units_;
    return *this;
  }
  constexpr beats& operator-=(beats b) noexcept {
    units_ -= b.units_;
    return *this;
  }
  friend constexpr auto operator<=>(beats, beats) = default;

  /// The largest k with k * q <= a (q > 0): which multiple of a quantum a position lies in.
  friend constexpr rep floor_div(beats a, beats q) noexcept { return floor_div(a.units_, q.units_); }
  /// The smallest k with k * q >= a (q > 0).
  friend constexpr rep ceil_div(beats a, beats q) noexcept { return -floor_div(-a.units_, q.units_); }

 private:
  static constexpr rep floor_div(rep a, rep b) noexcept {
    const rep q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
  }
  static constexpr rep checked_whole(long double n) {
    if (!(n >= -static_cast<long double>(max_whole) && n <= static_cast<long double>(max_whole)))
      throw std::invalid_argument("tactus::beats: a position must lie within ±" + std::to_string(max_whole) + " beats");
    return static_cast<rep>(n);
  }
  static constexpr rep round_units(double b) {
    if (!(b >= -static_cast<double>(max_whole) && b <= static_cast<double>(max_whole)))
      throw std::invalid_argument("tactus::beats: a position must be finite and within ±" + std::to_string(max_whole) +
                                  " beats, got " + detail::format_number(b));
    const double u = b * static_cast<double>(per_beat);
    return u >= 0 ? static_cast<rep>(u + 0.5) : -static_cast<rep>(-u + 0.5);
  }
  static constexpr rep fraction_units(rep num, rep den) {
    if (den == 0) throw std::invalid_argument("tactus::beats: a fraction's denominator must not be 0");
    checked_whole(static_cast<long double>(num) / static_cast<long double>(den));
    if (den < 0) num = -num, den = -den;
    const rep whole_part = floor_div(num, den);
    const rep rem = num - whole_part * den;  // 0 <= rem < den
    // rem * per_beat fits in 64 bits while den < 2^39; beyond, long double rounds it.
    const rep rem_units = den < (rep{1} << 39)
                              ? (rem * per_beat + den / 2) / den
                              : static_cast<rep>(static_cast<long double>(rem) * per_beat / den + 0.5L);
    return whole_part * per_beat + rem_units;
  }

  rep units_ = 0;
};

}  // namespace tactus
