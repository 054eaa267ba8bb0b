// SPDX-License-Identifier: BSL-1.0
// manual_clock.hpp's usage comment, whole: ten virtual seconds of a metronome, on time.
// Laid out as the documentation shows it (tests/snippets_test.cpp compares), so not formatted:
// clang-format off
#include <tactus/metronome.hpp>
#include <tactus/testing/manual_clock.hpp>
#include <asio.hpp>
#include <cstdio>

int main() {
  using namespace std::chrono_literals;
  asio::io_context io;
  tactus::testing::manual_clock::reset();
  tactus::basic_metronome<tactus::testing::manual_clock> m{io.get_executor(), tactus::bpm{120}};
  asio::co_spawn(io, m.run(), [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
  tactus::testing::advance(io, 10s);   // ten virtual seconds, every timer on its deadline
  std::printf("%lld beats, %lld late\n", (long long)m.delivered_count(), (long long)m.late_count());
  return m.delivered_count() == 21 && m.late_count() == 0 ? 0 : 1;
}
