// SPDX-License-Identifier: BSL-1.0
// thread_channel.hpp's usage comment and the README's producer thread, whole: a thread captures
// 20 ms audio frames (here, one every millisecond) and hands them to a coroutine on the loop; the
// thread never blocks, the coroutine awaits. The test suite builds and runs it.
// Laid out as the documentation shows it (tests/snippets_test.cpp compares), so not formatted:
// clang-format off
#include <tactus/tactus.hpp>
#include <asio.hpp>
#include <array>
#include <chrono>
#include <cstdio>
#include <thread>

struct frame {
  std::array<std::int16_t, 320> samples{};  // 20 ms at 16 kHz, inline: moving it allocates nothing
  int index = 0;
};

frame capture(int i) {  // a blocking driver call: one frame every millisecond here
  std::this_thread::sleep_for(std::chrono::milliseconds(1));
  frame f;
  f.index = i;
  return f;
}

int main() {
  asio::io_context io;
  tactus::thread_channel<frame> frames{io.get_executor(), 64};   // drop_oldest by default
  std::thread mic([&] {
    for (int i = 0; i < 50; ++i) {
      frames.try_send(capture(i));                                // never blocks
    }
    frames.close();                                               // the end of the stream
  });
  int got = 0;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    while (auto f = co_await frames.next()) {                     // nullopt: closed, all received
      ++got;                                                      // send f->samples on, ...
    }
  }, tactus::rethrow);
  io.run();                                                       // until the stream ends
  mic.join();
  std::printf("%d frames received, %llu dropped\n", got, (unsigned long long)frames.dropped());
  return got + frames.dropped() == 50 && frames.sent() == 50 ? 0 : 1;
}
