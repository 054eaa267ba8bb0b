// SPDX-License-Identifier: BSL-1.0
// tactus::yield: what was queued before runs before the coroutine resumes; coroutines that yield
// take turns; it is no sleep; it resumes on the coroutine's executor; a cancelled coroutine's
// yield throws; and, in virtual time, a batch that yields keeps a timer of its loop on time while
// one that does not holds it back for the whole batch.
#include <tactus/testing/manual_clock.hpp>
#include <tactus/yield.hpp>

#include "support/catch.hpp"
#include <asio/basic_waitable_timer.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <exception>
#include <future>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;

namespace {

void rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

}  // namespace

TEST_CASE("a yielding coroutine resumes after a handler posted before it") {
  asio::io_context io;
  std::vector<std::string> log;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        log.push_back("before");
        asio::post(io, [&] { log.push_back("posted"); });
        co_await tactus::yield();
        log.push_back("after");
      },
      rethrow);
  io.run();
  CHECK(log == std::vector<std::string>{"before", "posted", "after"});
}

TEST_CASE("coroutines that yield take turns") {
  asio::io_context io;
  std::string order;
  auto worker = [&](char name) -> asio::awaitable<void> {
    for (int i = 0; i < 3; ++i) {
      order += name;
      co_await tactus::yield();
    }
  };
  asio::co_spawn(io, worker('a'), rethrow);
  asio::co_spawn(io, worker('b'), rethrow);
  io.run();
  CHECK(order == "ababab");
}

TEST_CASE("yield is no sleep: with nothing else queued one poll runs a thousand yields") {
  asio::io_context io;
  int yields = 0;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (; yields < 1000; ++yields) co_await tactus::yield();
      },
      rethrow);
  io.poll();  // runs only what is ready: a sleep of any length would stop it short
  CHECK(yields == 1000);
  CHECK(io.stopped());
}

TEST_CASE("yield resumes on the coroutine's executor (a strand of a pool)") {
  asio::thread_pool pool{2};
  auto strand = asio::make_strand(pool);
  std::promise<int> on_strand;
  asio::co_spawn(
      strand,
      [&]() -> asio::awaitable<void> {
        int n = 0;
        for (int i = 0; i < 100; ++i) {
          co_await tactus::yield();
          n += strand.running_in_this_thread();
        }
        on_strand.set_value(n);
      },
      rethrow);
  auto f = on_strand.get_future();
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  CHECK(f.get() == 100);
  pool.join();
}

TEST_CASE("a coroutine that only yields still ends when cancelled") {
  asio::io_context io;
  asio::cancellation_signal cancel;
  int yields = 0;
  std::optional<std::error_code> ended;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (;;) {
          co_await tactus::yield();
          ++yields;
        }
      },
      asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr e) {
        try {
          if (e) std::rethrow_exception(e);
          ended = std::error_code{};
        } catch (const std::system_error& s) {
          ended = s.code();
        }
      }));
  for (int i = 0; i < 10; ++i) io.poll_one();  // it spins: poll() would never return
  CHECK(yields > 0);
  CHECK_FALSE(ended);
  cancel.emit(asio::cancellation_type::terminal);
  for (int i = 0; i < 10 && !ended; ++i) io.poll_one();
  REQUIRE(ended);
  CHECK(*ended == asio::error::operation_aborted);
}

TEST_CASE("a batch that yields keeps its loop's timer on time (virtual time)") {
  using clock = tactus::testing::manual_clock;
  clock::reset();
  asio::io_context io;
  std::vector<clock::duration> lateness;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {  // a heartbeat every 10 ms
        asio::basic_waitable_timer<clock> t{io};
        for (int k = 1; k <= 5; ++k) {
          t.expires_at(clock::time_point(k * 10ms));
          co_await t.async_wait(asio::use_awaitable);
          lateness.push_back(clock::now() - t.expiry());
        }
      },
      rethrow);
  const bool yields = GENERATE(true, false);
  INFO((yields ? "a batch that yields" : "a batch that does not yield"));
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {  // 100 slices of 1 ms of (virtual) work
        for (int i = 0; i < 100; ++i) {
          clock::advance(1ms);
          if (yields) co_await tactus::yield();
        }
      },
      rethrow);
  tactus::testing::advance(io, 0ms);  // everything ready runs: the batch, and what it lets through
  if (yields) {
    REQUIRE(lateness.size() == 5);
    CHECK(*std::max_element(lateness.begin(), lateness.end()) <= clock::duration(1ms));  // one slice at most
  } else {
    REQUIRE_FALSE(lateness.empty());
    CHECK(lateness.front() == clock::duration(90ms));  // due at 10 ms, fired when the batch ended at 100
  }
}
