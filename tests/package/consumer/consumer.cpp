// SPDX-License-Identifier: BSL-1.0
#include <tactus/tactus.hpp>
#include <tactus/testing/manual_clock.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include <chrono>
#include <cstdio>
#include <exception>

// The package test's consumer: a metronome on virtual time, through the installed headers and
// tactus::tactus alone. Exits 0 only if it saw exactly the expected beats, on their grid.

int main() {
  using clock = tactus::testing::manual_clock;
  constexpr int expected = 8;
  clock::reset();
  asio::io_context io;
  tactus::basic_metronome<clock> m{io.get_executor(), tactus::bpm{120}, tactus::meter{4}};

  int seen = 0;
  bool on_grid = true;
  m.on_tick([&](const tactus::basic_tick<clock>& b) {
    // At 120 bpm beat n is due at n * 500 ms; the bar and beat-in-bar follow from 4/4.
    const auto due = clock::time_point(std::chrono::milliseconds(500 * seen));
    on_grid = on_grid && b.index == seen && b.scheduled == due && b.bar == seen / 4 && b.beat_in_bar == seen % 4;
    if (++seen == expected) m.stop();
  });

  bool finished = false;
  std::exception_ptr error;
  asio::co_spawn(io, m.run(), [&](std::exception_ptr e) {
    finished = true;
    error = e;
  });
  tactus::testing::advance(io, std::chrono::seconds(10));

  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "consumer: the metronome threw: %s\n", e.what());
    }
    return 1;
  }
  if (!finished || seen != expected || !on_grid) {
    std::fprintf(stderr,
                 "consumer: expected %d beats on the grid and a clean stop; saw %d (on grid: %s, stopped: %s)\n",
                 expected, seen, on_grid ? "yes" : "no", finished ? "yes" : "no");
    return 1;
  }
  std::printf("consumer: %d virtual beats at 120 bpm, all on the grid\n", seen);
  return 0;
}
