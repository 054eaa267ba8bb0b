// SPDX-License-Identifier: BSL-1.0
// clock_estimator.hpp's usage comment, whole: two beats of a 120 BPM clock stamped the way JACK
// stamps them, then the predicted time of the next beat.
// Laid out as the documentation shows it (tests/snippets_test.cpp compares), so not formatted:
// clang-format off
#include <tactus/midi/clock_estimator.hpp>
#include <chrono>
#include <cstdio>
#include <optional>

int main() {
  using namespace std::chrono_literals;
  const auto t0 = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point next_beat{};
  auto schedule = [&](std::optional<std::chrono::steady_clock::time_point> t) { if (t) next_beat = *t; };

  tactus::midi::clock_estimator<> est{{.latency = 1333us}};   // half a JACK period
  est.on_start();                      // START: the next pulse is pulse 0 of beat 0
  for (int i = 0; i < 48; ++i) {
    const auto stamp = t0 + i * std::chrono::nanoseconds(20'833'333) + 1333us;  // 120 BPM
    est.on_pulse(stamp);                 // for every CLOCK, stamped on arrival
  }
  if (est.locked()) schedule(est.beat_time(est.pulse_count() / 24 + 1));

  const double ms = std::chrono::duration<double, std::milli>(next_beat - t0).count();
  std::printf("tempo %.2f BPM, beat 3 at %.3f ms\n", est.tempo() ? est.tempo()->value() : 0.0, ms);
  return est.locked() && ms > 1499 && ms < 1501 ? 0 : 1;
}
