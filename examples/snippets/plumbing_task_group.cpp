// SPDX-License-Identifier: BSL-1.0
// task_group.hpp's usage comment, whole: two tasks that would run for ever, stopped together.
// Laid out as the documentation shows it (tests/snippets_test.cpp compares), so not formatted:
// clang-format off
#include <tactus/tactus.hpp>
#include <asio.hpp>
#include <chrono>
#include <cstdio>

using namespace std::chrono_literals;

asio::awaitable<void> every(std::chrono::milliseconds period, const char* what) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  for (;;) {
    t.expires_after(period);
    co_await t.async_wait(asio::use_awaitable);  // cancelled by stop(): throws operation_aborted
    std::printf("%s\n", what);
  }
}
asio::awaitable<void> poll_state() { return every(10ms, "state"); }
asio::awaitable<void> report() { return every(25ms, "report"); }

int main() {
  asio::io_context io;
  auto main_task = [&]() -> asio::awaitable<void> {
    tactus::task_group tasks{io.get_executor()};
    tasks.spawn(poll_state());
    tasks.spawn(report());
    asio::steady_timer t(io, 60ms);
    co_await t.async_wait(asio::use_awaitable);
    co_await tasks.stop();   // every task cancelled, and ended; a task's exception is rethrown here
    std::printf("%zu tasks running\n", tasks.size());
  };
  asio::co_spawn(io, main_task(), tactus::rethrow);
  io.run();
}
