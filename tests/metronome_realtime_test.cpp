// SPDX-License-Identifier: BSL-1.0
// The one real-clock test: it asserts only what a loaded 2-core CI machine (and a sanitizer
// build) still guarantees: no early beat, a grid computed exactly, and no lateness that grows.
// Figures for lateness belong to bench/metronome_lateness, not here.
#include <tactus/metronome.hpp>

#include "support/catch.hpp"
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <vector>

using namespace std::chrono_literals;

TEST_CASE("real clock: no early beat, no growing drift") {
  asio::io_context io;
  tactus::metronome m{io.get_executor(), tactus::bpm{1200}};  // 50 ms beats
  std::vector<tactus::tick> seen;
  constexpr int n = 40;
  m.on_tick([&](const tactus::tick& b) {
    seen.push_back(b);
    if (seen.size() == n) m.stop();
  });
  m.set_overrun_policy(tactus::overrun_policy::catch_up);  // measure every beat, even on a stall
  bool done = false;
  asio::co_spawn(io, m.run(), [&](std::exception_ptr e) {
    done = true;
    if (e) std::rethrow_exception(e);
  });
  io.run_for(30s);
  REQUIRE(done);
  REQUIRE(seen.size() == n);

  const auto start = seen.front().scheduled;
  std::vector<std::chrono::nanoseconds> late;
  for (int i = 0; i < n; ++i) {
    CHECK(seen[i].index == i);
    CHECK(seen[i].scheduled == start + 50ms * i);  // the grid itself is exact
    CHECK(seen[i].fired >= seen[i].scheduled);     // never early
    late.push_back(seen[i].lateness());
  }
  // Drift: the lateness of the last ten beats is not systematically above the first ten's.
  // A sleep_for loop would add its overhead every beat; a scheduler hiccup is not drift, so the
  // medians are compared with a margin a loaded machine respects.
  auto median = [](std::vector<std::chrono::nanoseconds> v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  };
  const auto head = median({late.begin() + 1, late.begin() + 11});
  const auto tail = median({late.end() - 10, late.end()});
  CHECK(tail - head < 10ms);
}
