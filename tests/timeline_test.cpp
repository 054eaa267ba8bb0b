// SPDX-License-Identifier: BSL-1.0
#include <tactus/testing/manual_clock.hpp>
#include <tactus/timeline.hpp>

#include "support/catch.hpp"

#include <chrono>
#include <cmath>
#include <limits>

using namespace std::chrono_literals;
using tactus::beats;
using tactus::bpm;
using clock_type = tactus::testing::manual_clock;
using timeline = tactus::basic_timeline<clock_type>;
using tp = clock_type::time_point;
using Catch::Approx;
using Catch::Matchers::ContainsSubstring;

TEST_CASE("value types reject bad input with a clear error") {
  CHECK_THROWS_AS(bpm{0.0}, std::invalid_argument);
  CHECK_THROWS_AS(bpm{-120.0}, std::invalid_argument);
  CHECK_THROWS_AS(bpm{std::numeric_limits<double>::quiet_NaN()}, std::invalid_argument);
  CHECK_THROWS_AS(bpm{std::numeric_limits<double>::infinity()}, std::invalid_argument);
  CHECK_THROWS_WITH(bpm{-1.0}, ContainsSubstring("tempo must be in [0.001, 1e6]"));
  CHECK_THROWS_AS(tactus::meter{0}, std::invalid_argument);
  CHECK_THROWS_AS(tactus::subdivision{0}, std::invalid_argument);
  CHECK_THROWS_AS(tactus::subdivision{961}, std::invalid_argument);
  CHECK(bpm{120}.period() == std::chrono::duration<double>(0.5));
  CHECK(bpm::from_period(250ms).value() == Approx(240.0));
  CHECK(tactus::meter{3}.bar_length() == beats{3});
  CHECK(tactus::subdivision{4}.tick_length() == beats{0.25});
}

TEST_CASE("timeline converts beats and time both ways") {
  const timeline t(bpm{97.3}, tp(5s), beats{2});
  SECTION("the anchor maps to itself") {
    CHECK(t.time_at(beats{2}) == tp(5s));
    CHECK(t.beat_at(tp(5s)) == beats{2});
  }
  SECTION("round trips hold to a nanosecond") {
    for (double b : {-3.5, 0.0, 1.0, 2.25, 1000.0, 123456.789, 1e6}) {
      const auto time = t.time_at(beats{b});
      // The time is rounded to a nanosecond, 1.6e-8 beat at 97.3 BPM: the position comes back to
      // within the units of that nanosecond.
      CHECK(std::abs((t.beat_at(time) - beats{b}).units()) <= beats::per_beat * 97.3 / 60e9 + 1);
      CHECK(std::chrono::abs(t.time_at(t.beat_at(time)) - time) <= 1ns);
    }
  }
  SECTION("beat n lies n periods from the anchor, computed, not accumulated") {
    const long double period_ns = 60e9L / 97.3L;
    for (long long n : {1LL, 10LL, 1000LL, 999999LL, 1000000LL}) {
      const long double exact = 5e9L + (n - 2) * period_ns;
      const auto got = t.time_at(beats(static_cast<double>(n))).time_since_epoch().count();
      CHECK(std::fabs(static_cast<double>(got - exact)) <= 1.0);
    }
  }
}

TEST_CASE("a tempo change keeps the beat position continuous") {
  const timeline a(bpm{120}, tp(0s));
  SECTION("re-anchored at a time") {
    const auto at = tp(1250ms);  // beat 2.5
    const auto b = a.with_tempo(bpm{90}, at);
    CHECK(b.beat_at(at) == a.beat_at(at));
    CHECK(b.tempo() == bpm{90});
    // 1.5 beats later at 90 BPM = 1 s later.
    CHECK(b.time_at(beats{4}) == at + 1s);
  }
  SECTION("re-anchored at a beat") {
    const auto b = a.with_tempo_at_beat(bpm{60}, beats{4});
    CHECK(b.time_at(beats{4}) == a.time_at(beats{4}));
    CHECK(b.time_at(beats{5}) == tp(3s));
  }
  SECTION("a million beats through a thousand tempo changes stay within 1 us of exact") {
    timeline t(bpm{120}, tp(0s));
    long double exact_ns = 0;  // time of the current anchor beat, exact
    const double tempos[] = {120, 97.3, 133, 174, 60.7, 88.8};
    for (int change = 0; change < 1000; ++change) {
      const double b0 = change * 1000.0;
      const double tempo = tempos[change % 6];
      t = t.with_tempo_at_beat(bpm{tempo}, beats{b0});
      const long double period = 60e9L / tempo;
      for (int k : {1, 500, 1000}) {
        const auto got = t.time_at(beats{b0 + k}).time_since_epoch().count();
        REQUIRE(std::fabs(static_cast<double>(got - (exact_ns + k * period))) <= 1000.0);
      }
      exact_ns += 1000 * period;
    }
  }
}

TEST_CASE("grid helpers find the next grid point at or after a time") {
  const timeline t(bpm{120}, tp(0s));  // a beat every 500 ms
  SECTION("next beat") {
    CHECK(t.next_beat(tp(0s)) == beats{0});
    CHECK(t.next_beat(tp(1ns)) == beats{1});
    CHECK(t.next_beat(tp(500ms)) == beats{1});
    CHECK(t.next_beat(tp(500ms + 1ns)) == beats{2});
    CHECK(t.next_beat(tp(499999999ns)) == beats{1});
  }
  SECTION("next bar") {
    CHECK(t.next_bar(tp(1ns)) == beats{4});
    CHECK(t.next_bar(tp(2s)) == beats{4});
    CHECK(t.next_bar(tp(2s + 1ns), tactus::meter{3}) == beats{6});
  }
  SECTION("next multiple of a quantum with a phase") {
    CHECK(t.next_multiple(tp(0s), beats{4}, beats{1}) == beats{1});
    CHECK(t.next_multiple(tp(600ms), beats{4}, beats{1}) == beats{5});
    CHECK(t.next_multiple(tp(600ms), beats{0.25}) == beats{1.25});
  }
  SECTION("next tick of a subdivision") { CHECK(t.next_tick(tp(130ms), tactus::subdivision{4}) == beats{0.5}); }
  SECTION("exact grid times at awkward tempos are their own grid point") {
    const timeline odd(bpm{97.3}, tp(3s), beats{1});
    for (int n = 1; n < 2000; n += 37) {
      const auto at = odd.time_at(beats(n));
      CHECK(odd.next_beat(at) == beats(n));
      CHECK(odd.next_beat(at + 1ns) == beats(n + 1));
    }
  }
  SECTION("before the anchor") { CHECK(t.next_beat(tp(-1200ms)) == beats{-2}); }
}
