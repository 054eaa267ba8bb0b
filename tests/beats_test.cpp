// SPDX-License-Identifier: BSL-1.0
// Exact beat positions: integer units, exact fractions for every usual subdivision, clear errors.
#include <tactus/beats.hpp>
#include <tactus/meter.hpp>
#include <tactus/tempo.hpp>
#include <tactus/testing/manual_clock.hpp>
#include <tactus/timeline.hpp>

#include "support/catch.hpp"

#include <chrono>
#include <cstdint>
#include <limits>
#include <stdexcept>

using tactus::beats;
using tactus::bpm;

TEST_CASE("beats are exact") {
  SECTION("whole beats and fractions are integers of units") {
    CHECK(beats{16}.units() == 16 * beats::per_beat);
    CHECK(beats{1, 3} * 3 == beats{1});
    CHECK(beats{1, 3} + beats{1, 3} + beats{1, 3} == beats{1});  // 1/3 + 1/3 + 1/3 is 1, no tolerance
    CHECK(beats{0.1} == beats{1, 10});                           // per_beat is a multiple of 10
    CHECK(beats{1.0 / 3} == beats{1, 3});  // the nearest unit to a double third is the exact third
    CHECK(beats{1, 10} * 10 == beats{1});
    CHECK(beats{0.25} == beats{1, 4});
    CHECK(beats{-3, 2} == beats{-1.5});
    CHECK(beats{7, 4}.whole() == 1);
    CHECK(beats{7, 4}.fraction() == beats{3, 4});
    CHECK(beats{-1, 4}.whole() == -1);
    CHECK(beats{-1, 4}.fraction() == beats{3, 4});
  }
  SECTION("every usual subdivision has exact ticks") {
    for (int n :
         {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 480, 960}) {
      const tactus::subdivision s{n};
      CHECK(s.tick_length() * n == beats{1});
      CHECK(beats{1, n} == s.tick_length());
    }
  }
  SECTION("floor and ceiling division by a quantum") {
    CHECK(floor_div(beats{7}, beats{4}) == 1);
    CHECK(ceil_div(beats{7}, beats{4}) == 2);
    CHECK(ceil_div(beats{8}, beats{4}) == 2);
    CHECK(floor_div(beats{-1, 8}, beats{1, 4}) == -1);
    CHECK(ceil_div(beats{-1, 8}, beats{1, 4}) == 0);
  }
  SECTION("back to double at the edge") {
    CHECK(beats{2.5}.count() == 2.5);
    CHECK(beats{1, 3}.count() == Catch::Approx(1.0 / 3));
  }
}

TEST_CASE("bad values are rejected where they are written, with a clear message") {
  CHECK_THROWS_WITH(beats{std::numeric_limits<double>::quiet_NaN()},
                    Catch::Matchers::ContainsSubstring("must be finite"));
  CHECK_THROWS_WITH(beats{std::numeric_limits<double>::infinity()},
                    Catch::Matchers::ContainsSubstring("must be finite"));
  CHECK_THROWS_WITH(beats{1e15}, Catch::Matchers::ContainsSubstring("within"));
  CHECK_THROWS_WITH((beats{1, 0}), Catch::Matchers::ContainsSubstring("denominator"));
  CHECK_THROWS_WITH(tactus::subdivision{17},
                    Catch::Matchers::ContainsSubstring("17 ticks per beat do not fall on exact positions"));
  CHECK_THROWS_WITH(tactus::subdivision{0}, Catch::Matchers::ContainsSubstring("1..960"));
  // A tempo whose beat would not fit the clock: hello_metronome --bpm 1e-9 printed a lateness of
  // -9.2e12 us before this check.
  CHECK_THROWS_WITH(bpm{1e-9}, Catch::Matchers::ContainsSubstring("got 1e-09"));
  CHECK_THROWS_WITH(bpm{1e-9}, Catch::Matchers::ContainsSubstring("[0.001, 1e6]"));
  CHECK_THROWS_WITH(bpm{2e6}, Catch::Matchers::ContainsSubstring("got 2e+06"));
  CHECK_NOTHROW(bpm{bpm::min_value});
  CHECK_NOTHROW(bpm{bpm::max_value});
}

TEST_CASE("timelines at the extreme tempos stay representable") {
  using mc = tactus::testing::manual_clock;
  using tp = mc::time_point;
  SECTION("the slowest tempo: a beat of 16.7 hours, to the nanosecond") {
    const tactus::basic_timeline<mc> t(bpm{bpm::min_value}, tp{});
    CHECK(t.time_at(beats{1}) == tp(std::chrono::seconds(60000)));
    CHECK(t.time_at(beats{100000}) == tp(std::chrono::seconds(6'000'000'000)));
    CHECK(t.beat_at(t.time_at(beats{123, 7})) == beats{123, 7});
  }
  SECTION("beyond the clock's range a time saturates instead of wrapping") {
    const tactus::basic_timeline<mc> t(bpm{bpm::min_value}, tp{});
    CHECK(t.time_at(beats{1'000'000}) == tp::max());
    CHECK(t.time_at(beats{-1'000'000}) == tp::min());
  }
  SECTION("the fastest tempo: 60 us a beat, every 960th tick distinct") {
    const tactus::basic_timeline<mc> t(bpm{bpm::max_value}, tp{});
    CHECK(t.time_at(beats{1}) == tp(std::chrono::microseconds(60)));
    CHECK(t.time_at(beats{1, 960}) < t.time_at(beats{2, 960}));
  }
}
