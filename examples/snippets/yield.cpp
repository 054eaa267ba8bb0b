// SPDX-License-Identifier: BSL-1.0
// yield.hpp's usage comment and the README's yield, whole: a coroutine crunching through a batch
// yields after each slice, so that a timer of the same loop keeps firing. The test suite builds
// and runs it.
// Laid out as the documentation shows it (tests/snippets_test.cpp compares), so not formatted:
// clang-format off
#include <tactus/tactus.hpp>
#include <asio.hpp>
#include <chrono>
#include <cstdio>

using namespace std::chrono_literals;

void crunch(int) {                          // about 0.1 ms of work
  const auto end = std::chrono::steady_clock::now() + 100us;
  while (std::chrono::steady_clock::now() < end) {
  }
}

int main() {
  asio::io_context io;
  bool done = false;
  int ticks_during = 0;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    asio::steady_timer t{io};
    while (!done) {                         // every millisecond, while the batch runs
      t.expires_after(1ms);
      co_await t.async_wait(asio::use_awaitable);
      if (!done) ++ticks_during;
    }
  }, tactus::rethrow);
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < 1000; ++i) {
      crunch(i);                            // a slice of CPU-bound work
      co_await tactus::yield();             // what is queued meanwhile runs now
    }
    done = true;
  }, tactus::rethrow);
  io.run();
  std::printf("the timer fired %d times during 1000 slices of work\n", ticks_during);
  return ticks_during > 0 ? 0 : 1;
}
