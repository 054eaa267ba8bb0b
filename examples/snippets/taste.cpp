// SPDX-License-Identifier: BSL-1.0
// The README's "A taste", whole: four bars, a tempo change at a bar line, an offbeat half a beat
// after each downbeat. The test suite builds and runs it (tests/snippets_test.cpp checks that the
// README shows exactly this).
// Laid out as the documentation shows it (tests/snippets_test.cpp compares), so not formatted:
// clang-format off
#include <tactus/tactus.hpp>
#include <asio.hpp>
#include <cstdio>

int main() {
  asio::io_context io;
  tactus::metronome m{io.get_executor(), tactus::bpm{120}, tactus::meter{4}};

  m.on_bar([&](const tactus::tick& t) -> asio::awaitable<void> {
    if (t.bar == 4) { m.stop(); co_return; }         // four bars, then run() returns
    if (t.bar == 1) m.set_tempo(tactus::bpm{180}, tactus::tempo_change::next_bar);
    co_await m.after(tactus::beats{1, 2});           // exactly half a beat later; the grid goes on
    std::printf("  and\n");
  });
  m.on_beat([](const tactus::tick& t) {              // every beat, exactly on the grid
    std::printf("%lld:%d\n", (long long)t.bar + 1, t.beat_in_bar + 1);
  });

  asio::co_spawn(io, m.run(), tactus::rethrow);
  io.run();
}
