// SPDX-License-Identifier: BSL-1.0
// tactus::thread_channel, and the core hand-off queue under it (shared with midi::input): order,
// both overflow policies, exact counts with several producer threads, close(), the consumer's
// wake-up protocol, cancellation (through a slot and through `||`), every completion token, and
// what keeps io_context::run() busy. Waiting is driven by poll() and, where a deadline races a
// receive, by the manual clock; real threads only assert counts and order.
#include <tactus/detail/asio_compat.hpp>
#include <tactus/detail/handoff_queue.hpp>
#include <tactus/testing/manual_clock.hpp>
#include <tactus/thread_channel.hpp>

#include "support/catch.hpp"
#include "support/every_token.hpp"
#include "support/sanitizers.hpp"
#include <asio/basic_waitable_timer.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using tactus::overflow_policy;
using tactus::thread_channel;
using tactus::detail::handoff_queue;
using tactus::detail::when_full;

namespace {

void rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

void poll(asio::io_context& io) { tactus_test::poll(io); }

// Everything queued, received one callback at a time on a polled io_context (single-threaded
// tests only: size() is exact there, so no receive is left pending).
template <class T>
std::vector<T> drain(asio::io_context& io, thread_channel<T>& ch) {
  std::vector<T> got;
  while (ch.size() != 0) {
    const auto before = got.size();
    ch.async_receive([&](std::error_code ec, T v) {
      REQUIRE_FALSE(ec);
      got.push_back(std::move(v));
    });
    poll(io);
    REQUIRE(got.size() == before + 1);
  }
  return got;
}

struct item {
  int producer = 0;
  int seq = 0;
};

// A fixture for tests/support/every_token.hpp.
struct channel_fixture {
  asio::io_context io;
  std::optional<thread_channel<int>> ch{std::in_place, io.get_executor(), 8};
};

}  // namespace

// --- the core hand-off queue --------------------------------------------------------------------

TEST_CASE("handoff_queue wakes the consumer once per burst and again after it armed") {
  handoff_queue<int> q{8, when_full::drop_newest};
  auto push = [&](int v) { return q.push([v](int& s) noexcept { s = v; }, [](int&) noexcept {}); };
  auto pop = [&] {
    std::optional<int> v;
    q.pop([&](int& s) { v = s; });
    return v;
  };
  CHECK(push(1).wake);  // the first item: the owner wakes the consumer
  CHECK_FALSE(push(2).wake);
  CHECK_FALSE(push(3).wake);  // the same burst: no more wake-ups
  CHECK(pop() == 1);
  CHECK(q.arm());       // items are still there: the consumer takes them instead of waiting
  CHECK(push(4).wake);  // armed: the next push wakes again (a spurious wake, harmless)
  CHECK(pop() == 2);
  CHECK(pop() == 3);
  CHECK(pop() == 4);
  CHECK_FALSE(pop());
  CHECK_FALSE(q.arm());  // empty: the consumer may sleep
  CHECK(push(5).wake);
  CHECK_FALSE(push(6).wake);
  CHECK(q.arrived() == 6);
  CHECK(q.overflowed() == 0);
  CHECK(q.size() == 2);
}

TEST_CASE("handoff_queue drops the newest or the oldest when full, counting each drop") {
  SECTION("drop_newest") {
    handoff_queue<int> q{3, when_full::drop_newest};
    std::vector<bool> queued, reported;
    for (int v = 1; v <= 6; ++v) {
      const auto r = q.push([v](int& s) noexcept { s = v; }, [](int&) noexcept { FAIL("no discard"); });
      queued.push_back(r.queued);
      reported.push_back(r.report_overflow);
      CHECK_FALSE(r.dropped_oldest);
    }
    CHECK(queued == std::vector<bool>{true, true, true, false, false, false});
    CHECK(reported == std::vector<bool>{false, false, false, true, false, false});  // one report
    CHECK(q.take_overflow());
    CHECK(q.push([](int& s) noexcept { s = 7; }, [](int&) noexcept {}).report_overflow);  // reports again
    std::vector<int> got;
    while (q.pop([&](int& s) { got.push_back(s); })) {
    }
    CHECK(got == std::vector<int>{1, 2, 3});
    CHECK(q.overflowed() == 4);
    CHECK(q.arrived() == 7);
  }
  SECTION("drop_oldest") {
    handoff_queue<int> q{3, when_full::drop_oldest};
    std::vector<int> discarded;
    for (int v = 1; v <= 6; ++v) {
      const auto r = q.push([v](int& s) noexcept { s = v; }, [&](int& s) noexcept { discarded.push_back(s); });
      CHECK(r.queued);
      CHECK(r.dropped_oldest == (v > 3));
    }
    std::vector<int> got;
    while (q.pop([&](int& s) { got.push_back(s); })) {
    }
    CHECK(got == std::vector<int>{4, 5, 6});
    CHECK(discarded == std::vector<int>{1, 2, 3});
    CHECK(q.overflowed() == 3);
    CHECK(q.arrived() == 6);
  }
}

TEST_CASE("handoff_queue's gate refuses producers after shut and waits for one inside") {
  handoff_queue<int> q{4, when_full::drop_newest};
  std::atomic<bool> inside{false}, release{false}, shut_returned{false};
  std::thread producer([&] {
    q.produce([&]() noexcept {
      inside = true;
      while (!release) std::this_thread::yield();
      q.push([](int& s) noexcept { s = 1; }, [](int&) noexcept {});
    });
  });
  while (!inside) std::this_thread::yield();
  std::thread closer([&] {
    q.shut();
    shut_returned = true;
  });
  std::this_thread::sleep_for(50ms);
  CHECK_FALSE(shut_returned);  // never early: a producer is inside
  release = true;
  closer.join();
  producer.join();
  CHECK(shut_returned);
  CHECK(q.arrived() == 1);  // the push inside the gate went through
  bool ran = false;
  CHECK_FALSE(q.produce([&]() noexcept { ran = true; }));
  CHECK_FALSE(ran);
  CHECK(q.arrived() == 1);
}

TEST_CASE("handoff_queue refuses a capacity of 0 with a clear error") {
  CHECK_THROWS_AS(handoff_queue<int>(0, when_full::drop_oldest), std::invalid_argument);
  asio::io_context io;
  CHECK_THROWS_WITH(thread_channel<int>(io.get_executor(), 0), Catch::Matchers::ContainsSubstring("capacity"));
}

// --- thread_channel on one thread: order, policies, close ---------------------------------------

TEST_CASE("thread_channel delivers items in order, never inside the receive call") {
  asio::io_context io;
  thread_channel<int> ch{io.get_executor(), 8};
  for (int i = 0; i < 5; ++i) CHECK(ch.try_send(i));
  CHECK(ch.size() == 5);
  int calls = 0;
  ch.async_receive([&](std::error_code ec, int v) {
    CHECK_FALSE(ec);
    CHECK(v == 0);
    ++calls;
  });
  CHECK(calls == 0);  // an item was there, but the handler runs later
  poll(io);
  CHECK(calls == 1);
  CHECK(drain(io, ch) == std::vector<int>{1, 2, 3, 4});
  CHECK(ch.sent() == 5);
  CHECK(ch.received() == 5);
  CHECK(ch.dropped() == 0);
  CHECK(ch.size() == 0);
}

TEST_CASE("thread_channel's overflow policies: drop_oldest keeps the latest, drop_newest the first") {
  asio::io_context io;
  SECTION("drop_oldest") {
    thread_channel<int> ch{io.get_executor(), 4, overflow_policy::drop_oldest};
    for (int i = 0; i < 10; ++i) CHECK(ch.try_send(i));  // every new item is queued
    CHECK(drain(io, ch) == std::vector<int>{6, 7, 8, 9});
    CHECK(ch.dropped() == 6);
    CHECK(ch.received() == 4);
    CHECK(ch.sent() == 10);
  }
  SECTION("drop_newest") {
    thread_channel<int> ch{io.get_executor(), 4, overflow_policy::drop_newest};
    std::vector<bool> queued;
    for (int i = 0; i < 10; ++i) queued.push_back(ch.try_send(i));
    CHECK(queued == std::vector<bool>{true, true, true, true, false, false, false, false, false, false});
    CHECK(drain(io, ch) == std::vector<int>{0, 1, 2, 3});
    CHECK(ch.dropped() == 6);
    CHECK(ch.received() == 4);
    CHECK(ch.sent() == 10);
  }
}

TEST_CASE("close: the items sent before are received, then closed, and later sends are counted") {
  asio::io_context io;
  thread_channel<int> ch{io.get_executor(), 8};
  ch.try_send(1);
  ch.try_send(2);
  ch.close();
  CHECK(ch.is_closed());
  CHECK_FALSE(ch.try_send(3));  // refused, and counted
  std::vector<int> got;
  std::error_code end;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        got.push_back(co_await ch.receive());
        got.push_back(co_await ch.receive());
        try {
          co_await ch.receive();
        } catch (const std::system_error& e) {
          end = e.code();
        }
        const auto last = co_await ch.next();
        CHECK_FALSE(last);  // next(): nullopt once closed
      },
      rethrow);
  io.run();
  CHECK(got == std::vector<int>{1, 2});
  CHECK(end == tactus::thread_channel_errc::closed);
  CHECK(end.message() == "the channel is closed");
  CHECK(std::string(end.category().name()) == "tactus.thread_channel");
  CHECK(ch.sent() == 3);
  CHECK(ch.dropped() == 1);
  CHECK(ch.received() == 2);
  ch.close();  // idempotent
}

TEST_CASE("a second receive while one is pending completes with in_progress") {
  asio::io_context io;
  thread_channel<int> ch{io.get_executor(), 8};
  std::error_code first, second;
  ch.async_receive([&](std::error_code ec, int) { first = ec; });
  ch.async_receive([&](std::error_code ec, int) { second = ec; });
  poll(io);
  CHECK(second == asio::error::in_progress);
  ch.try_send(1);
  poll(io);
  CHECK_FALSE(first);
}

TEST_CASE("a pending receive is outstanding work, an idle channel is none") {
  asio::io_context io;
  thread_channel<int> ch{io.get_executor(), 8};
  io.run();  // nobody receives: returns at once
  CHECK(io.stopped());
  io.restart();

  std::optional<std::error_code> got;
  ch.async_receive([&](std::error_code ec, int) { got = ec; });
  io.poll();
  CHECK_FALSE(io.stopped());  // a consumer waits: run() would wait with it
  CHECK_FALSE(got);
  ch.try_send(5);
  io.run_for(10s);  // returns once the receive is done
  CHECK(io.stopped());
  REQUIRE(got);
  CHECK_FALSE(*got);

  SECTION("and a cancelled receive leaves none") {
    io.restart();
    asio::cancellation_signal cancel;
    got.reset();
    ch.async_receive(asio::bind_cancellation_slot(cancel.slot(), [&](std::error_code ec, int) { got = ec; }));
    io.poll();
    CHECK_FALSE(io.stopped());
    cancel.emit(asio::cancellation_type::total);
    io.run_for(10s);
    CHECK(io.stopped());
    REQUIRE(got);
    CHECK(*got == asio::error::operation_aborted);
  }
}

TEST_CASE("async_receive works with every completion token") {
  tactus_test::completes_with_every_token<channel_fixture>(
      [](channel_fixture& f, auto&& token) { return f.ch->async_receive(std::forward<decltype(token)>(token)); },
      [](channel_fixture& f) {
        f.ch->try_send(42);
        poll(f.io);
      },
      [](channel_fixture&, int v) { CHECK(v == 42); });
}

TEST_CASE("async_receive is aborted by every cancellation type and by the channel's end") {
  tactus_test::aborts_on_every_cancellation<channel_fixture>(
      [](channel_fixture& f, auto&& token) { return f.ch->async_receive(std::forward<decltype(token)>(token)); },
      [](channel_fixture& f) { poll(f.io); },
      [](channel_fixture& f) {
        if (f.ch) f.ch->try_send(1);
        poll(f.io);
      },
      [](channel_fixture& f) { f.ch.reset(); });
}

TEST_CASE("a cancelled receive loses no item") {
  const auto type =
      GENERATE(asio::cancellation_type::terminal, asio::cancellation_type::partial, asio::cancellation_type::total);
  INFO("cancellation type " << int(type));
  asio::io_context io;
  thread_channel<int> ch{io.get_executor(), 8};
  SECTION("cancelled while waiting, then an item comes") {
    asio::cancellation_signal cancel;
    std::error_code first;
    ch.async_receive(asio::bind_cancellation_slot(cancel.slot(), [&](std::error_code ec, int) { first = ec; }));
    poll(io);
    cancel.emit(type);
    ch.try_send(7);
    poll(io);
    CHECK(first == asio::error::operation_aborted);
  }
  SECTION("cancelled with an item already queued, before its delivery ran") {
    ch.try_send(7);
    asio::cancellation_signal cancel;
    std::error_code first;
    ch.async_receive(asio::bind_cancellation_slot(cancel.slot(), [&](std::error_code ec, int) { first = ec; }));
    cancel.emit(type);  // the delivery is posted, not run yet
    poll(io);
    CHECK(first == asio::error::operation_aborted);
  }
  CHECK(drain(io, ch) == std::vector<int>{7});
  CHECK(ch.received() == 1);
  CHECK(ch.dropped() == 0);
}

TEST_CASE("a receive raced against a deadline with || loses no item (virtual time)") {
  using namespace tactus::detail::awaitable_operators;
  using clock = tactus::testing::manual_clock;
  clock::reset();
  asio::io_context io;
  thread_channel<int> ch{io.get_executor(), 8};
  std::vector<std::size_t> winners;
  std::vector<int> values;
  std::vector<clock::time_point> when;
  bool done = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        asio::basic_waitable_timer<clock> deadline{io};
        for (int round = 0; round < 3; ++round) {
          deadline.expires_after(10ms);
          auto r = co_await (ch.receive() || deadline.async_wait(asio::use_awaitable));
          winners.push_back(r.index());
          when.push_back(clock::now());
          if (r.index() == 0) values.push_back(std::get<0>(r));
        }
        while (ch.size() != 0) values.push_back(co_await ch.receive());  // what a lost race left queued
        done = true;
      },
      rethrow);
  tactus::testing::advance(io, 10ms);  // round 0: nothing is sent, the deadline wins, exactly at 10 ms
  CHECK(winners == std::vector<std::size_t>{1});
  ch.try_send(1);  // round 1: the item wins at once
  tactus::testing::advance(io, 1ms);
  CHECK(winners == std::vector<std::size_t>{1, 0});
  // Round 2 (from 10 ms, its deadline at 20 ms): the item and the deadline come in the same turn
  // of the loop; either may win, and the item is received either way.
  tactus::testing::advance(io, 8ms);           // 19 ms: still waiting
  clock::advance_to(clock::time_point(20ms));  // the deadline is due (nothing polled yet) ...
  ch.try_send(2);                              // ... and an item is there
  tactus::testing::advance(io, 0ms);           // one turn sees both
  CHECK(done);
  REQUIRE(winners.size() == 3);
  CHECK(when[0] == clock::time_point(10ms));
  CHECK(when[1] == clock::time_point(10ms));
  CHECK(when[2] == clock::time_point(20ms));
  INFO("round 2 won by " << (winners[2] == 0 ? "the item" : "the deadline"));
  CHECK(values == std::vector<int>{1, 2});
  CHECK(ch.received() == 2);
  CHECK(ch.dropped() == 0);
}

TEST_CASE("a flood is delivered in batches, so that other handlers run in between") {
  asio::io_context io;
  thread_channel<int> ch{io.get_executor(), 256};
  for (int i = 0; i < 200; ++i) ch.try_send(i);
  std::optional<std::uint64_t> seen_by_marker;
  int got = 0;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 200; ++i) {
          const int v = co_await ch.receive();  // (never co_await inside a Catch2 macro: it may evaluate twice)
          CHECK(v == i);
          if (++got == 1) asio::post(io, [&] { seen_by_marker = ch.received(); });  // queued behind us
        }
      },
      rethrow);
  io.run();
  CHECK(got == 200);
  REQUIRE(seen_by_marker);
  CHECK(*seen_by_marker < 200);  // it ran in the middle of the flood, not after it
  CHECK(*seen_by_marker >= 2);   // and the coroutine got several items in a row before it
}

TEST_CASE("a completion handler may destroy the channel") {
  asio::io_context io;
  std::optional<thread_channel<int>> ch{std::in_place, io.get_executor(), 8};
  ch->try_send(1);
  ch->try_send(2);
  std::vector<int> got;
  ch->async_receive([&](std::error_code ec, int v) {
    REQUIRE_FALSE(ec);
    got.push_back(v);
    ch.reset();  // inside the channel's delivery: it must not touch the channel afterwards
  });
  poll(io);
  CHECK(got == std::vector<int>{1});
  CHECK_FALSE(ch);
}

// --- real producer threads ----------------------------------------------------------------------

TEST_CASE("several producer threads: each item is received once, in its producer's order, or counted") {
  const auto policy = GENERATE(overflow_policy::drop_oldest, overflow_policy::drop_newest);
  INFO((policy == overflow_policy::drop_oldest ? "drop_oldest" : "drop_newest"));
#if defined(TACTUS_TEST_TSAN)
  constexpr int per_producer = 5000;
#else
  constexpr int per_producer = 40000;
#endif
  constexpr int producers = 4;
  asio::io_context io;
  thread_channel<item> ch{io.get_executor(), 64, policy};
  std::vector<std::vector<int>> got(producers);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        std::uint64_t n = 0;
        while (auto v = co_await ch.next()) {
          got.at(v->producer).push_back(v->seq);
          if (++n % 2000 == 0) std::this_thread::sleep_for(1ms);  // a consumer that falls behind now and then
        }
      },
      rethrow);
  std::atomic<std::uint64_t> accepted{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p)
    threads.emplace_back([&, p] {
      for (int s = 0; s < per_producer; ++s)
        if (ch.try_send(item{p, s})) accepted.fetch_add(1, std::memory_order_relaxed);
    });
  std::thread closer([&] {
    for (auto& t : threads) t.join();
    ch.close();  // from a thread of its own: the consumer ends after the last item
  });
  io.run();
  closer.join();

  std::uint64_t received = 0;
  for (int p = 0; p < producers; ++p) {
    INFO("producer " << p);
    CHECK(std::adjacent_find(got[p].begin(), got[p].end(), [](int a, int b) { return a >= b; }) == got[p].end());
    received += got[p].size();
  }
  CHECK(ch.sent() == std::uint64_t(producers) * per_producer);
  CHECK(ch.received() == received);
  CHECK(ch.received() + ch.dropped() == ch.sent());  // nothing lost uncounted
  CHECK(ch.size() == 0);
  // drop_newest drops only items it refuses, so every accepted item arrives; drop_oldest also
  // drops accepted items (the oldest ones).
  if (policy == overflow_policy::drop_newest) CHECK(accepted == received);
  else CHECK(accepted >= received);
  std::printf("figure: %s, %d producers x %d items through 64 slots: %llu received, %llu dropped\n",
              policy == overflow_policy::drop_oldest ? "drop_oldest" : "drop_newest", producers, per_producer,
              (unsigned long long)ch.received(), (unsigned long long)ch.dropped());
}

TEST_CASE("a producer keeps sending while the consumer is stalled, and drop_oldest keeps the latest") {
  asio::io_context io;  // not run while the producer sends: the consumer is stalled
  thread_channel<int> ch{io.get_executor(), 8};
  constexpr int n = 100000;
  int refused = 0;
  std::chrono::nanoseconds longest{0};
  std::thread producer([&] {
    for (int i = 0; i < n; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      if (!ch.try_send(i)) ++refused;
      longest = std::max<std::chrono::nanoseconds>(longest, std::chrono::steady_clock::now() - t0);
    }
  });
  producer.join();
  CHECK(refused == 0);  // one producer: the oldest can always be taken
  CHECK(ch.sent() == n);
  CHECK(ch.dropped() == n - 8);
  CHECK(drain(io, ch) == std::vector<int>{n - 8, n - 7, n - 6, n - 5, n - 4, n - 3, n - 2, n - 1});
  std::printf("figure: the longest of %d try_send calls into a full channel took %.1f us\n", n,
              std::chrono::duration<double, std::micro>(longest).count());
}

TEST_CASE("close() from another thread ends a waiting consumer") {
  asio::io_context io;
  thread_channel<int> ch{io.get_executor(), 8};
  std::optional<std::error_code> got;
  ch.async_receive([&](std::error_code ec, int) { got = ec; });
  std::thread closer([&] {
    std::this_thread::sleep_for(10ms);
    ch.close();
  });
  io.run_for(10s);
  closer.join();
  REQUIRE(got);
  CHECK(*got == tactus::thread_channel_errc::closed);
  CHECK(io.stopped());
}
