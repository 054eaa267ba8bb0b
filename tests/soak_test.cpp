// SPDX-License-Identifier: BSL-1.0
// Soak in virtual time (issue 12): 24 simulated hours of a metronome at 300 BPM on average, the
// tempo changed at random (at the beat, or from the next bar line, 240 to 400 BPM) every few
// hundred beats. Every deadline must equal the exact formula: the time of the last tempo change
// plus whole periods since, in integer nanoseconds (each tempo is chosen with a whole number of
// nanoseconds a beat, so the formula has no rounding of its own). Nothing accumulates: after
// 432,000 beats the last one is still exact. The real-time counterpart (60 s at a 1 ms beat under
// stress-ng load) is bench/soak_realtime, run from scripts/bench.
#include <tactus/metronome.hpp>
#include <tactus/testing/manual_clock.hpp>

#include "support/catch.hpp"
#include "support/sanitizers.hpp"
#include "support/virtual_metronome.hpp"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <random>

using namespace std::chrono_literals;
using tactus::beats;
using tactus::bpm;

namespace {
// 24 hours; 3 under the sanitizers, whose metronome runs ten times slower (CI's time: the
// 24-hour run is the dev preset's and Debian 13's).
#if defined(TACTUS_TEST_SANITIZED)
constexpr auto simulated = std::chrono::hours(3);
#else
constexpr auto simulated = std::chrono::hours(24);
#endif
}  // namespace

TEST_CASE("soak: 24 virtual hours at 300 BPM with random tempo changes and every deadline exact") {
  mc::reset();
  asio::io_context io;
  const std::int64_t first_period = 200'000'000;  // 300 BPM
  metronome m{io.get_executor(), bpm{60e9 / double(first_period)}, tactus::meter{4}};
  std::mt19937_64 rng(20261202);
  std::uniform_int_distribution<std::int64_t> period_ns(150'000'000, 250'000'000);  // 400..240 BPM, 300 on average
  std::uniform_int_distribution<int> every(100, 1000);

  // The exact formula: beat n falls at anchor_time + (n - anchor_beat) * period.
  struct segment {
    std::int64_t beat, time_ns, period_ns;
  };
  segment now{0, 0, first_period};
  std::optional<segment> at_bar;  // a change from the next bar line, not yet reached
  std::int64_t count = 0, mismatches = 0, changes = 0, next_change = every(rng);
  std::int64_t last_ns = 0;
  m.on_tick([&](const metronome::tick_type& b) {
    if (b.index != count) FAIL("tick " << b.index << " where " << count << " was due");
    if (at_bar && count == at_bar->beat)
      now = {at_bar->beat, now.time_ns + (at_bar->beat - now.beat) * now.period_ns, at_bar->period_ns}, at_bar.reset();
    const std::int64_t exact = now.time_ns + (count - now.beat) * now.period_ns;
    last_ns = b.scheduled.time_since_epoch().count();
    if (last_ns != exact) {
      if (++mismatches <= 5) FAIL_CHECK("beat " << count << " at " << last_ns << " ns, the formula says " << exact);
    }
    if (count == next_change && !at_bar) {
      const auto p = period_ns(rng);
      ++changes;
      if (changes % 2) {  // from this beat on: the next beat is one new period after this one
        m.set_tempo(bpm{60e9 / double(p)});
        now = {count, exact, p};
      } else {  // from the next bar line (4/4), exactly there
        m.set_tempo(bpm{60e9 / double(p)}, tactus::tempo_change::next_bar);
        at_bar = segment{(count / 4 + 1) * 4, 0, p};
      }
      next_change = count + every(rng);
    }
    ++count;
  });
  runner r;
  r.start(io, m);
  while (mc::now().time_since_epoch() < simulated) step(io, m);
  const auto hours = std::chrono::duration_cast<std::chrono::hours>(simulated).count();
  std::printf("figure: soak: %lld beats in %lld virtual hours, %lld tempo changes, last beat at %lld ns\n",
              static_cast<long long>(count), static_cast<long long>(hours), static_cast<long long>(changes),
              static_cast<long long>(last_ns));
  CHECK(mismatches == 0);
  CHECK(count > hours * 3600 * 240 / 60);  // at least 240 BPM all along
  CHECK(changes > hours * 16);
  CHECK(m.late_count() == 0);
  CHECK(m.skipped_count() == 0);
  m.stop();
  io.poll();
  CHECK(r.done);
}
