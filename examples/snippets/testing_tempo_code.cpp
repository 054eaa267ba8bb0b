// SPDX-License-Identifier: BSL-1.0
// The README's "Testing your own tempo code", whole: ten virtual minutes of a metronome in
// milliseconds. The test suite builds and runs it; it fails (exit 1) if a beat is missing or off
// the grid.
// Laid out as the documentation shows it (tests/snippets_test.cpp compares), so not formatted:
// clang-format off
#include <tactus/tactus.hpp>
#include <tactus/testing/manual_clock.hpp>
#include <asio.hpp>
#include <cstdio>

int main() {
  using clock = tactus::testing::manual_clock;
  clock::reset();
  asio::io_context io;
  tactus::basic_metronome<clock> m{io.get_executor(), tactus::bpm{120}};
  int heard = 0, off_grid = 0;
  m.on_beat([&](const tactus::basic_tick<clock>& t) {
    ++heard;
    if (t.fired != clock::time_point(t.index * std::chrono::milliseconds(500))) ++off_grid;
  });
  asio::co_spawn(io, m.run(), tactus::rethrow);
  tactus::testing::advance(io, std::chrono::minutes(10));   // ten virtual minutes, in milliseconds
  std::printf("%d beats, %d off the grid\n", heard, off_grid);  // 1201 (0 to 1200), 0
  return heard == 1201 && off_grid == 0 ? 0 : 1;
}
