// SPDX-License-Identifier: BSL-1.0
#include <tactus/midi/clock_estimator.hpp>
#include <tactus/testing/manual_clock.hpp>

#include "support/catch.hpp"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

// Synthetic 24 ppqn clocks, all in virtual time: the true pulse times of a tempo map, Gaussian
// jitter on every pulse, then the quantization JACK imposes (stamped at the end of a 128-frame
// period at 48 kHz, 2.67 ms). The estimator removes half a period of latency, so its grid is
// compared with the true (sent) times. Deterministic: fixed seeds.

namespace {

using clk = std::chrono::steady_clock;
using namespace std::chrono_literals;
using Catch::Approx;
using tactus::midi::clock_estimator;
using tactus::midi::pulse_kind;

constexpr double audio_period_ns = 128.0 / 48000.0 * 1e9;
const auto half_period = std::chrono::nanoseconds(std::llround(audio_period_ns / 2));

double period_ns(double bpm) { return 60e9 / (bpm * 24); }

struct pulse {
  std::int64_t index;  // true pulse index
  double true_ns;      // when it was sent
  clk::time_point stamp;
};

struct source {
  std::mt19937_64 rng;
  double jitter_ns;
  double grid;             // phase of the audio period grid
  double anchor_ns = 1e9;  // true time of pulse `anchor_index`
  std::int64_t anchor_index = 0;
  double bpm;

  source(double tempo, double jitter, unsigned seed)
      : rng(seed),
        jitter_ns(jitter),
        grid(std::uniform_real_distribution<double>(0, audio_period_ns)(rng)),
        bpm(tempo) {}

  double true_time(std::int64_t i) const { return anchor_ns + double(i - anchor_index) * period_ns(bpm); }
  pulse make(std::int64_t i) {
    const double t = true_time(i);
    const double noisy = t + std::normal_distribution<double>(0.0, jitter_ns)(rng);
    const double seen = std::ceil((noisy - grid) / audio_period_ns) * audio_period_ns + grid;
    return {i, t, clk::time_point(std::chrono::nanoseconds(std::llround(seen)))};
  }
  // The tempo changes at pulse i (which is on both the old and the new grid).
  void change_tempo(std::int64_t i, double new_bpm) {
    anchor_ns = true_time(i);
    anchor_index = i;
    bpm = new_bpm;
  }
};

clock_estimator<> make_estimator() {
  tactus::midi::clock_estimator_config c;
  c.latency = half_period;
  return clock_estimator<>{c};
}

double ns_of(clk::time_point t) { return double(t.time_since_epoch().count()); }

// Largest |error| of the predicted next beat, measured after each pulse from `from` on.
struct errors {
  double tempo = 0, phase_ms = 0;
};

}  // namespace

TEST_CASE("clock_estimator follows a steady clock", "[midi][clock]") {
  // 5 % of the pulse period as jitter, and fixed levels.
  const double tempos[] = {60, 97.3, 120, 133, 174};

  SECTION("exact for a clean clock") {
    for (double bpm : tempos) {
      auto est = make_estimator();
      source src(bpm, 0.0, 1);
      for (std::int64_t i = 0; i < 48; ++i)
        est.on_pulse(clk::time_point(std::chrono::nanoseconds(std::llround(src.true_time(i)))) + half_period);
      REQUIRE(est.tempo());
      CHECK(est.tempo()->value() == Approx(bpm).epsilon(1e-6));
      CHECK(std::abs(ns_of(*est.beat_time(10)) - src.true_time(240)) < 1000.0);  // 1 us
      CHECK(est.locked());
      CHECK(est.pulse_count() == 48);
    }
  }

  SECTION("tempo and phase with jitter and quantization") {
    for (double bpm : tempos) {
      for (double jitter_ms : {0.1, 0.5, 1.0, 2.0, -5.0}) {  // negative: percent of the period
        const double jitter = jitter_ms > 0 ? jitter_ms * 1e6 : -jitter_ms / 100 * period_ns(bpm);
        const bool five_percent = jitter_ms < 0;
        for (unsigned seed = 1; seed <= 5; ++seed) {
          INFO("bpm " << bpm << ", jitter " << jitter / 1e6 << " ms, seed " << seed);
          auto est = make_estimator();
          est.on_start();
          source src(bpm, jitter, seed);
          errors from_beat3, from_beat5;
          for (std::int64_t i = 0; i < 24 * 16; ++i) {
            const auto p = src.make(i);
            const auto info = est.on_pulse(p.stamp);
            REQUIRE(info.index == i);
            if (i < 48) continue;
            const double e = std::abs(est.tempo()->value() - bpm);
            const std::int64_t next_beat = i / 24 + 1;
            const double pe = std::abs(ns_of(*est.beat_time(next_beat)) - src.true_time(next_beat * 24)) / 1e6;
            from_beat3.tempo = std::max(from_beat3.tempo, e);
            from_beat3.phase_ms = std::max(from_beat3.phase_ms, pe);
            if (i >= 24 * 4) {
              from_beat5.tempo = std::max(from_beat5.tempo, e);
              from_beat5.phase_ms = std::max(from_beat5.phase_ms, pe);
            }
          }
          CHECK(est.locked());
          if (jitter <= 0.5e6) {
            // The goals hold whatever the tempo: 0.1 BPM from the fifth beat (from the
            // third up to 120 BPM), next beat predicted within 1 ms from the fifth.
            CHECK(from_beat5.tempo <= 0.1);
            if (bpm <= 120) CHECK(from_beat3.tempo <= 0.1);
            CHECK(from_beat5.phase_ms <= 1.0);
          } else if (five_percent || jitter <= 1e6) {
            // 5 % jitter (0.7..2.1 ms) or 1 ms: 0.1 BPM from the third beat is beyond any
            // estimator at the faster tempos (the least-squares slope over 49 pulses with
            // sigma = 1.1 ms is +-0.13 BPM at 174 BPM, one sigma); it holds from the fifth.
            CHECK(from_beat5.tempo <= 0.1);
            if (bpm <= 60) CHECK(from_beat3.tempo <= 0.1);
            CHECK(from_beat3.tempo <= 0.3);
            CHECK(from_beat5.phase_ms <= 1.5);
          } else {  // 2 ms
            CHECK(from_beat5.tempo <= 0.5);
            CHECK(from_beat5.phase_ms <= 2.5);
          }
        }
      }
    }
  }
}

TEST_CASE("clock_estimator follows a tempo step", "[midi][clock]") {
  struct step {
    double from, to;
  };
  for (auto s : {step{120, 140}, step{140, 120}, step{97.3, 133}, step{174, 60}, step{133, 60}, step{120, 55}}) {
    for (double jitter_ms : {0.1, 0.5, 1.0}) {
      for (unsigned seed = 1; seed <= 5; ++seed) {
        INFO(s.from << " -> " << s.to << " BPM, jitter " << jitter_ms << " ms, seed " << seed);
        auto est = make_estimator();
        source src(s.from, jitter_ms * 1e6, seed);
        const std::int64_t at = 24 * 8;
        for (std::int64_t i = 0; i <= at; ++i) est.on_pulse(src.make(i).stamp);
        src.change_tempo(at, s.to);
        double after_1_beat = 0, after_4_beats = 0;
        for (std::int64_t i = at + 1; i < at + 24 * 12; ++i) {
          const auto info = est.on_pulse(src.make(i).stamp);
          const double e = std::abs(est.tempo()->value() - s.to);
          if (i >= at + 24) {
            // The pulse count survives the change: no pulse taken for a dropout.
            REQUIRE(info.index == i);
            after_1_beat = std::max(after_1_beat, e);
          }
          if (i >= at + 24 * 4) after_4_beats = std::max(after_4_beats, e);
        }
        // Within one beat: within 1 BPM. Within 0.1 BPM takes longer, as the fit of the new
        // tempo only has the pulses since the change: up to four beats at 1 ms jitter.
        CHECK(after_1_beat <= 1.0);
        CHECK(after_4_beats <= 0.1);
        CHECK(est.locked());
      }
    }
  }
}

TEST_CASE("clock_estimator survives dropouts and restarts after a gap", "[midi][clock]") {
  SECTION("missing pulses keep their place in the count") {
    for (unsigned seed = 1; seed <= 5; ++seed) {
      auto est = make_estimator();
      source src(120, 1e6, seed);
      std::mt19937_64 rng(seed);
      std::int64_t dropped = 0;
      for (std::int64_t i = 0; i < 24 * 32; ++i) {
        // 1..3 pulses missing about every two beats, from the third beat on.
        if (i > 48 && i % 48 == std::int64_t(rng() % 24)) {
          const auto n = std::int64_t(1 + rng() % 3);
          i += n - 1;
          dropped += n;
          continue;
        }
        const auto info = est.on_pulse(src.make(i).stamp);
        INFO("seed " << seed << ", pulse " << i);
        REQUIRE(info.index == i);
        if (i >= 72) {
          CHECK(std::abs(est.tempo()->value() - 120) <= 0.1);
          CHECK(std::abs(ns_of(*est.beat_time(i / 24 + 1)) - src.true_time((i / 24 + 1) * 24)) <= 1.5e6);
        }
      }
      CHECK(dropped > 10);
    }
  }

  SECTION("a dropout reports its kind") {
    auto est = make_estimator();
    source src(100, 0.2e6, 3);
    for (std::int64_t i = 0; i < 60; ++i) est.on_pulse(src.make(i).stamp);
    const auto info = est.on_pulse(src.make(62).stamp);
    CHECK(info.kind == pulse_kind::dropout);
    CHECK(info.index == 62);
    CHECK(est.pulse_count() == 63);
  }

  SECTION("a long gap restarts the fit") {
    auto est = make_estimator();
    source src(120, 0.5e6, 4);
    for (std::int64_t i = 0; i < 96; ++i) est.on_pulse(src.make(i).stamp);
    REQUIRE(est.locked());
    // Two seconds of silence (96 periods), then the clock again, at another tempo.
    source later(90, 0.5e6, 5);
    later.anchor_ns = src.true_time(96) + 2e9;
    auto info = est.on_pulse(later.make(0).stamp);
    CHECK(info.kind == pulse_kind::gap);
    CHECK(info.index == 96);  // a pause in the clock is a pause in the music
    CHECK_FALSE(est.tempo());
    CHECK_FALSE(est.locked());
    for (std::int64_t i = 1; i < 72; ++i) {
      info = est.on_pulse(later.make(i).stamp);
      CHECK(info.index == 96 + i);
    }
    CHECK(est.locked());
    CHECK(std::abs(est.tempo()->value() - 90) <= 0.1);
  }

  SECTION("an outlier stays out of the fit") {
    auto est = make_estimator();
    source src(120, 0.3e6, 6);
    for (std::int64_t i = 0; i < 96; ++i) est.on_pulse(src.make(i).stamp);
    const auto before = est.tempo()->value();
    const auto info = est.on_pulse(src.make(96).stamp + 8ms);  // a late delivery
    CHECK(info.kind == pulse_kind::outlier);
    CHECK(info.index == 96);
    CHECK(est.tempo()->value() == Approx(before).margin(1e-9));
    for (std::int64_t i = 97; i < 120; ++i) CHECK(est.on_pulse(src.make(i).stamp).kind == pulse_kind::normal);
    CHECK(std::abs(est.tempo()->value() - 120) <= 0.1);
  }
}

TEST_CASE("clock_estimator positions", "[midi][clock]") {
  SECTION("on_start makes the next pulse pulse 0 and keeps the tempo") {
    auto est = make_estimator();
    source src(120, 0.2e6, 7);
    for (std::int64_t i = 0; i < 50; ++i) est.on_pulse(src.make(i).stamp);
    REQUIRE(est.locked());
    est.on_start();
    CHECK(est.pulse_count() == 0);
    CHECK(est.locked());
    CHECK(std::abs(ns_of(*est.pulse_time(0)) - src.true_time(50)) < 1e6);  // predicted already
    CHECK(est.on_pulse(src.make(50).stamp).index == 0);
    CHECK(est.on_pulse(src.make(51).stamp).index == 1);
    CHECK(std::abs(ns_of(*est.beat_time(1)) - src.true_time(74)) < 1e6);
  }

  SECTION("set_next_pulse follows a song position") {
    auto est = make_estimator();
    source src(100, 0.2e6, 8);
    for (std::int64_t i = 0; i < 30; ++i) est.on_pulse(src.make(i).stamp);
    est.set_next_pulse(16 * 6);  // sixteenth 16: bar 2 in 4/4
    CHECK(est.on_pulse(src.make(30).stamp).index == 96);
    CHECK(est.pulse_count() == 97);
  }

  SECTION("pulse_position inverts pulse_time, timeline matches beat_time") {
    auto est = make_estimator();
    source src(133, 0.5e6, 9);
    for (std::int64_t i = 0; i < 100; ++i) est.on_pulse(src.make(i).stamp);
    const auto t = *est.pulse_time(123);
    CHECK(*est.pulse_position(t) == Approx(123).margin(1e-4));
    const auto tl = *est.timeline();
    CHECK(tl.tempo().value() == Approx(est.tempo()->value()));
    CHECK(std::abs(ns_of(tl.time_at(tactus::beats(6))) - ns_of(*est.beat_time(6))) <= 1000.0);
    CHECK(est.jitter() > 0.3ms);
    CHECK(est.jitter() < 1.5ms);
  }

  SECTION("reset forgets everything") {
    auto est = make_estimator();
    source src(120, 0.2e6, 10);
    for (std::int64_t i = 0; i < 30; ++i) est.on_pulse(src.make(i).stamp);
    est.reset();
    CHECK_FALSE(est.tempo());
    CHECK_FALSE(est.pulse_time(0));
    CHECK(est.pulse_count() == 0);
    CHECK(est.on_pulse(src.make(30).stamp).kind == pulse_kind::first);
  }

  SECTION("any Clock: manual_clock time points") {
    using mc = tactus::testing::manual_clock;
    clock_estimator<mc> est;
    for (int i = 0; i < 24; ++i) est.on_pulse(mc::time_point(std::chrono::milliseconds(1000 + 25 * i)));
    CHECK(est.tempo()->value() == Approx(100.0));
    CHECK(*est.beat_time(2) == mc::time_point(std::chrono::milliseconds(1000 + 25 * 48)));
  }
}

TEST_CASE("a pulse stamped like the previous one is a repeat only where the fit leaves no room for it") {
  SECTION("JACK's 2.7 ms period, jitter 0.5 ms: every repeat is caught and changes nothing") {
    const double bpm = GENERATE(60.0, 120.0, 174.0);
    INFO(bpm << " BPM");
    source src(bpm, 0.5e6, 7);
    auto est = make_estimator(), ref = make_estimator();
    int repeats = 0;
    for (std::int64_t i = 0; i < 24 * 16; ++i) {
      const auto p = src.make(i);
      CHECK(est.on_pulse(p.stamp).index == ref.on_pulse(p.stamp).index);
      if (i >= 24 && i % 7 == 0) {  // the cycle delivered again, from beat 1 on (the fit is locked)
        const auto again = est.on_pulse(p.stamp);
        CHECK(again.kind == pulse_kind::repeat);
        CHECK(again.index == i);
        ++repeats;
      }
      CHECK(est.pulse_count() == i + 1);
    }
    CHECK(repeats > 40);
    CHECK(est.tempo()->value() == ref.tempo()->value());
    CHECK(*est.beat_time(17) == *ref.beat_time(17));
  }

  SECTION("pulses that share a 21 ms period (1024 frames) are all counted") {
    // 174 BPM is 14.4 ms a pulse: two pulses often land in one period, with one stamp.
    std::mt19937_64 rng(3);
    const double big_period = 1024.0 / 48000.0 * 1e9, p = period_ns(174.0);
    tactus::midi::clock_estimator_config c;
    c.latency = std::chrono::nanoseconds(std::llround(big_period / 2));
    clock_estimator<> est{c};
    int shared = 0;
    clk::time_point prev{};
    for (std::int64_t i = 0; i < 24 * 32; ++i) {
      const double sent = 1e9 + double(i) * p + std::normal_distribution<double>(0.0, 0.2e6)(rng);
      const auto stamp =
          clk::time_point(std::chrono::nanoseconds(std::llround(std::ceil(sent / big_period) * big_period)));
      if (stamp == prev) ++shared;
      prev = stamp;
      CHECK(est.on_pulse(stamp).kind != pulse_kind::repeat);
    }
    CHECK(shared > 100);
    CHECK(est.pulse_count() == 24 * 32);
  }
}
