// SPDX-License-Identifier: BSL-1.0
// clock_transport.hpp's usage comment, whole: START and two beats of clock, fed by hand.
// Laid out as the documentation shows it (tests/snippets_test.cpp compares), so not formatted:
// clang-format off
#include <tactus/midi/clock_transport.hpp>
#include <chrono>
#include <algorithm>
#include <cstdio>
#include <optional>

int main() {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const std::int64_t b = 2;  // the beat whose time we want
  double beat_ms = 0;
  auto use = [&](std::optional<clock::time_point> t) {
    if (t) beat_ms = std::chrono::duration<double, std::milli>(*t - t0).count();
  };

  tactus::midi::clock_transport<> tr;
  for (int i = -1; i < 48; ++i) {
    const auto msg = i < 0 ? tactus::midi::message::start() : tactus::midi::message::clock();
    const auto stamp = t0 + std::max(i, 0) * std::chrono::nanoseconds(20'833'333);
    tr.on_message(msg, stamp);               // every message from the clock source
  }
  tr.check_lost(clock::now());             // from a timer, e.g. every few pulse periods
  if (tr.state() == tactus::midi::transport_state::playing) use(tr.estimator().beat_time(b));

  std::printf("beat %lld at %.3f ms\n", static_cast<long long>(b), beat_ms);
  return beat_ms > 999 && beat_ms < 1001 ? 0 : 1;
}
