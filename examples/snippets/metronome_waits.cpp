// SPDX-License-Identifier: BSL-1.0
// metronome.hpp's usage comment, whole: a callback on every beat, and a coroutine that waits for
// the next bar line and then a triplet eighth. Runs about two seconds.
// Laid out as the documentation shows it (tests/snippets_test.cpp compares), so not formatted:
// clang-format off
#include <tactus/metronome.hpp>
#include <asio.hpp>
#include <iostream>

int main() {
  asio::io_context io;
  tactus::metronome m{io.get_executor(), tactus::bpm{120}, tactus::meter{4}};
  m.on_beat([](const tactus::tick& t) { std::cout << t.bar << ':' << t.beat_in_bar << '\n'; });
  asio::co_spawn(io, m.run(), tactus::rethrow);       // until m.stop() or cancellation
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    co_await m.next_bar();                      // any coroutine: resume on the next bar line
    co_await m.after(tactus::beats{1, 3});      // exactly a triplet eighth later
    std::cout << "at " << m.position().count() << '\n';
    m.stop();
  }, tactus::rethrow);
  io.run();
}
