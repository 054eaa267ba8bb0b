// SPDX-License-Identifier: BSL-1.0
// offload.hpp's usage comment and the README's offload, whole: a blocking driver call on a thread
// pool while a timer keeps ticking on the loop; an exception comes back as an exception; a call
// that misses its deadline has its result dropped. The test suite builds and runs it.
// Laid out as the documentation shows it (tests/snippets_test.cpp compares), so not formatted:
// clang-format off
#include <tactus/tactus.hpp>
#include <asio.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>

using namespace std::chrono_literals;

double read_sensor(std::chrono::milliseconds takes = 50ms) {   // a blocking driver call
  std::this_thread::sleep_for(takes);
  return 21.5;
}

int main() {
  asio::io_context io;
  int ticks = 0;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {   // the loop keeps running meanwhile
    asio::steady_timer t{io};
    for (int i = 0; i < 4; ++i) {
      t.expires_after(5ms);
      co_await t.async_wait(asio::use_awaitable);
      ++ticks;
    }
  }, tactus::rethrow);

  double value = 0;
  int ticks_during_read = 0;
  bool rethrown = false, dropped = false;
  asio::thread_pool pool{2};
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    double v = co_await tactus::offload(pool, [] { return read_sensor(); });   // blocks a pool thread
    value = v;
    ticks_during_read = ticks;
    try {
      co_await tactus::offload(pool, []() -> double { throw std::runtime_error("sensor unplugged"); });
    } catch (const std::runtime_error& e) {                                  // fn's own exception
      rethrown = std::string(e.what()) == "sensor unplugged";
    }
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer deadline{io, 10ms};
    auto r = co_await (tactus::offload(pool, [] { return read_sensor(200ms); }) ||
                       deadline.async_wait(asio::use_awaitable));
    dropped = r.index() == 1;               // the deadline won: the read's result is dropped
  }, tactus::rethrow);
  io.run();
  pool.join();                              // the dropped read ran to its end
  std::printf("%.1f degrees, %d ticks during the read, exception %s, late read %s\n", value,
              ticks_during_read, rethrown ? "rethrown" : "lost", dropped ? "dropped" : "kept");
  return value == 21.5 && ticks == 4 && rethrown && dropped ? 0 : 1;
}
