// SPDX-License-Identifier: BSL-1.0
// with_timeout / with_deadline in virtual time: the result before the deadline; at the deadline
// the operation cancelled and timed_out thrown, exactly then; an operation's own exception before
// the deadline comes out at once (where Asio's bare `||` would wait for the timer and lose it); an
// operation that ignores cancellation; the caller's own cancellation.
#include <tactus/testing/manual_clock.hpp>
#include <tactus/with_timeout.hpp>

#include "support/catch.hpp"
#include "support/spawned.hpp"
#include <asio/basic_waitable_timer.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/io_context.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>
#include <stdexcept>
#include <string>

using clock_type = tactus::testing::manual_clock;
using namespace std::chrono_literals;
using Catch::Matchers::ContainsSubstring;
using tactus::testing::advance;
using tactus_test::spawn;

namespace {

clock_type::time_point at(clock_type::duration d) { return clock_type::time_point(d); }

struct probe {
  bool cancelled = false;  // the operation saw operation_aborted
  bool ended = false;
};

// An operation: `d` of waiting, then `value`; records whether it was cancelled.
asio::awaitable<int> slow_value(clock_type::duration d, int value, probe& p) {
  asio::basic_waitable_timer<clock_type> t(co_await asio::this_coro::executor);
  t.expires_after(d);
  try {
    co_await t.async_wait(asio::use_awaitable);
  } catch (const std::system_error& e) {
    p.cancelled = e.code() == asio::error::operation_aborted;
    throw;
  }
  p.ended = true;
  co_return value;
}

asio::awaitable<void> slow_void(clock_type::duration d, probe& p) { (void)co_await slow_value(d, 0, p); }

asio::awaitable<int> fails_after(clock_type::duration d) {
  asio::basic_waitable_timer<clock_type> t(co_await asio::this_coro::executor);
  t.expires_after(d);
  co_await t.async_wait(asio::use_awaitable);
  throw std::runtime_error("device error");
}

// Ignores cancellation: its wait has no cancellation slot.
asio::awaitable<int> stubborn(clock_type::duration d) {
  asio::basic_waitable_timer<clock_type> t(co_await asio::this_coro::executor);
  t.expires_after(d);
  co_await t.async_wait(asio::bind_cancellation_slot(asio::cancellation_slot(), asio::use_awaitable));
  co_return 7;
}

}  // namespace

TEST_CASE("with_timeout: an operation that ends in time gives its result, when it ends") {
  clock_type::reset();
  asio::io_context io;
  probe p;
  auto r = spawn<clock_type>(io, tactus::with_timeout<clock_type>(slow_value(300ms, 42, p), 500ms));
  auto v = spawn<clock_type>(io, tactus::with_timeout<clock_type>(slow_void(100ms, p), 500ms));
  advance(io, 2s);
  REQUIRE(r->done);
  CHECK_FALSE(r->error);
  CHECK(r->value == 42);
  CHECK(r->at == at(300ms));
  REQUIRE(v->done);
  CHECK_FALSE(v->error);
  CHECK(v->at == at(100ms));
}

TEST_CASE("with_timeout: at the deadline the operation is cancelled and the caller gets timed_out, exactly then") {
  clock_type::reset();
  asio::io_context io;
  probe p, pv;
  auto r = spawn<clock_type>(io, tactus::with_timeout<clock_type>(slow_value(2s, 42, p), 500ms));
  auto v = spawn<clock_type>(io, tactus::with_timeout<clock_type>(slow_void(2s, pv), 250ms));
  advance(io, 3s);
  REQUIRE(r->done);
  CHECK(r->code() == asio::error::timed_out);
  CHECK_THAT(r->what(), ContainsSubstring("tactus::with_timeout: nothing within 500 ms"));
  CHECK(r->at == at(500ms));
  CHECK(p.cancelled);
  CHECK_FALSE(p.ended);
  REQUIRE(v->done);
  CHECK(v->code() == asio::error::timed_out);
  CHECK(v->at == at(250ms));
  CHECK(pv.cancelled);
}

TEST_CASE("with_timeout: the operation's own exception comes out when it happens, not at the deadline") {
  clock_type::reset();
  asio::io_context io;
  auto r = spawn<clock_type>(io, tactus::with_timeout<clock_type>(fails_after(100ms), 1s));
  advance(io, 3s);
  REQUIRE(r->done);
  CHECK(r->what() == "device error");
  CHECK(r->at == at(100ms));
}

TEST_CASE("with_timeout: an operation that ignores cancellation delays the timeout until it ends") {
  clock_type::reset();
  asio::io_context io;
  auto r = spawn<clock_type>(io, tactus::with_timeout<clock_type>(stubborn(800ms), 200ms));
  advance(io, 3s);
  REQUIRE(r->done);
  CHECK(r->code() == asio::error::timed_out);  // the deadline passed: its late result is not taken
  CHECK(r->at == at(800ms));
}

TEST_CASE("with_timeout: terminal cancellation of the caller cancels the operation, operation_aborted comes out") {
  clock_type::reset();
  asio::io_context io;
  asio::cancellation_signal sig;
  probe p;
  auto r = spawn<clock_type>(io, tactus::with_timeout<clock_type>(slow_value(2s, 1, p), 1s), sig.slot());
  advance(io, 300ms);
  sig.emit(asio::cancellation_type::terminal);
  tactus_test::settle(io);
  REQUIRE(r->done);
  CHECK(r->code() == asio::error::operation_aborted);
  CHECK(r->at == at(300ms));
  CHECK(p.cancelled);
}

TEST_CASE(
    "with_timeout: partial and total cancellation of a coroutine that lets only terminal through change nothing") {
  for (auto type : {asio::cancellation_type::partial, asio::cancellation_type::total}) {
    INFO("cancellation type " << int(type));
    clock_type::reset();
    asio::io_context io;
    asio::cancellation_signal sig;
    probe p;
    auto r = spawn<clock_type>(io, tactus::with_timeout<clock_type>(slow_value(2s, 1, p), 1s), sig.slot());
    advance(io, 300ms);
    sig.emit(type);
    tactus_test::settle(io);
    CHECK_FALSE(r->done);
    advance(io, 1s);
    REQUIRE(r->done);
    CHECK(r->code() == asio::error::timed_out);
    CHECK(r->at == at(1s));
  }
}

TEST_CASE("with_deadline: an absolute deadline, computed once for several steps") {
  clock_type::reset();
  asio::io_context io;
  probe p1, p2;
  auto steps = [&]() -> asio::awaitable<int> {
    const auto deadline = clock_type::now() + 1s;
    int a = co_await tactus::with_deadline<clock_type>(slow_value(600ms, 1, p1), deadline);
    int b = co_await tactus::with_deadline<clock_type>(slow_value(600ms, 2, p2), deadline);  // 400 ms left
    co_return a + b;
  };
  auto r = spawn<clock_type>(io, steps());
  advance(io, 3s);
  REQUIRE(r->done);
  CHECK(r->code() == asio::error::timed_out);
  CHECK(r->at == at(1s));
  CHECK(p1.ended);
  CHECK(p2.cancelled);
}
