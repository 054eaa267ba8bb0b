// SPDX-License-Identifier: BSL-1.0
// A servo in virtual time on the recording driver: every update of a 100 ms move at 50 Hz, at
// its exact time. What <tactus/sinks/recording_driver.hpp> shows.
#include <tactus/sinks/recording_driver.hpp>
#include <tactus/sinks/servo.hpp>
#include <tactus/testing/manual_clock.hpp>

#include <asio/io_context.hpp>

#include <chrono>
#include <cstdio>
#include <functional>

template <class TimePoint>
long long ms(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

int main() {
  tactus::testing::manual_clock::reset();
  asio::io_context io;
  using clock = tactus::testing::manual_clock;
  tactus::sinks::recording_driver<clock> rec;
  tactus::basic_servo<clock> arm{io.get_executor(), std::ref(rec)};
  arm.async_move_to(120, std::chrono::milliseconds(100), [](std::error_code, tactus::move_result) {});
  tactus::testing::advance(io, std::chrono::milliseconds(100));
  for (const auto& e : rec.events()) std::printf("%3lld ms: %5.1f\n", ms(e.time), e.value);
  return rec.events().size() == 6 && rec.events().back().value == 120 ? 0 : 1;  // rest, then 20 .. 100 ms
}
