// SPDX-License-Identifier: BSL-1.0
#pragma once
// Asio's universal model, proved for an operation of ours: it completes with a plain callback
// (never inside the initiating call), with deferred, with use_future and with use_awaitable, and
// it is aborted by terminal, partial and total cancellation through its slot, and by the end of
// its object. Each case runs on a fresh `Fixture` (default-constructible, with an `io` member).
//
//   start(f, token)   initiates the operation on fixture f with `token`, returns its result
//   drive(f)          runs f until the operation is due (virtual time, usually)
//   check(f, value)   the value it completed with is right (check(f) for void(std::error_code))
//   before(f)         runs f a little, not yet up to the operation's completion
//   end(f)            ends the object the operation waits on (stop(), destruction, ...)
#include <tactus/detail/asio_compat.hpp>

#include "catch.hpp"
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/error.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>

#include <chrono>
#include <exception>
#include <future>
#include <system_error>
#include <type_traits>

namespace tactus_test {

inline void poll(asio::io_context& io) {
  io.restart();
  io.poll();
}

template <class Fixture, class Start, class Drive, class Check>
void completes_with_every_token(Start start, Drive drive, Check check) {
  {
    INFO("token: a plain callback");
    Fixture f;
    int calls = 0;
    start(f, [&](std::error_code ec, auto... v) {
      CHECK_FALSE(ec);
      check(f, v...);
      ++calls;
    });
    CHECK(calls == 0);  // never inside the initiating call
    drive(f);
    CHECK(calls == 1);
  }
  {
    INFO("token: deferred");
    Fixture f;
    int calls = 0;
    auto op = start(f, tactus::detail::deferred);
    std::move(op)([&](std::error_code ec, auto... v) {
      CHECK_FALSE(ec);
      check(f, v...);
      ++calls;
    });
    drive(f);
    CHECK(calls == 1);
  }
  {
    INFO("token: use_future");
    Fixture f;
    auto fut = start(f, asio::use_future);
    drive(f);
    // use_future completes through the system executor, on another thread: wait for it.
    REQUIRE(fut.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    if constexpr (std::is_void_v<decltype(fut.get())>) {
      fut.get();
      check(f);
    } else {
      check(f, fut.get());
    }
  }
  {
    INFO("token: use_awaitable");
    Fixture f;
    int calls = 0;
    asio::co_spawn(f.io, start(f, asio::use_awaitable), [&](std::exception_ptr e, auto... v) {
      REQUIRE_FALSE(e);
      check(f, v...);
      ++calls;
    });
    drive(f);
    CHECK(calls == 1);
  }
}

template <class Fixture, class Start, class Before, class Drive, class End>
void aborts_on_every_cancellation(Start start, Before before, Drive drive, End end) {
  for (auto type :
       {asio::cancellation_type::terminal, asio::cancellation_type::partial, asio::cancellation_type::total}) {
    INFO("cancellation type " << static_cast<int>(type));
    Fixture f;
    asio::cancellation_signal sig;
    int calls = 0;
    std::error_code got;
    start(f, asio::bind_cancellation_slot(sig.slot(), [&](std::error_code ec, auto...) {
            ++calls;
            got = ec;
          }));
    before(f);
    CHECK(calls == 0);
    sig.emit(type);
    poll(f.io);
    CHECK(calls == 1);
    CHECK(got == asio::error::operation_aborted);
    drive(f);
    CHECK(calls == 1);  // and never again
  }
  {
    INFO("the end of the object waited on");
    Fixture f;
    int calls = 0;
    std::error_code got;
    start(f, [&](std::error_code ec, auto...) {
      ++calls;
      got = ec;
    });
    before(f);
    end(f);
    poll(f.io);
    CHECK(calls == 1);
    CHECK(got == asio::error::operation_aborted);
  }
  {
    INFO("use_future: an aborted operation throws operation_aborted from get()");
    Fixture f;
    auto fut = start(f, asio::use_future);
    end(f);
    poll(f.io);
    REQUIRE(fut.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    try {
      fut.get();
      FAIL("no exception");
    } catch (const std::system_error& e) {
      CHECK(e.code() == asio::error::operation_aborted);
    }
  }
}

}  // namespace tactus_test
