// SPDX-License-Identifier: BSL-1.0
#pragma once
// A coroutine co_spawned for a test, with what it ended with and when (on Clock):
//
//   auto r = tactus_test::spawn<clock>(io, tactus::poll_until<clock>(pred, 100ms, 1s), sig.slot());
//   tactus::testing::advance(io, 2s);
//   CHECK(r->done);  CHECK(r->value == false);  CHECK(r->at == clock::time_point(1s));
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/error.hpp>
#include <asio/io_context.hpp>
#include <asio/this_coro.hpp>

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>

namespace tactus_test {

template <class Clock, class T>
struct spawned {
  bool done = false;
  std::exception_ptr error;
  std::optional<std::conditional_t<std::is_void_v<T>, bool, T>> value;
  typename Clock::time_point at{};

  /// The error's code if it is a std::system_error, else a default code.
  std::error_code code() const {
    try {
      if (error) std::rethrow_exception(error);
    } catch (const std::system_error& e) {
      return e.code();
    } catch (...) {
    }
    return {};
  }
  /// The error's what(), or "".
  std::string what() const {
    try {
      if (error) std::rethrow_exception(error);
    } catch (const std::exception& e) {
      return e.what();
    } catch (...) {
    }
    return {};
  }
};

template <class Clock, class T>
std::shared_ptr<spawned<Clock, T>> spawn(asio::io_context& io, asio::awaitable<T> a,
                                         asio::cancellation_slot slot = {}) {
  auto r = std::make_shared<spawned<Clock, T>>();
  if constexpr (std::is_void_v<T>) {
    asio::co_spawn(io, std::move(a), asio::bind_cancellation_slot(slot, [r](std::exception_ptr e) {
                     r->done = true;
                     r->error = e;
                     if (!e) r->value = true;
                     r->at = Clock::now();
                   }));
  } else {
    asio::co_spawn(io, std::move(a), asio::bind_cancellation_slot(slot, [r](std::exception_ptr e, T v) {
                     r->done = true;
                     r->error = e;
                     if (!e) r->value = std::move(v);
                     r->at = Clock::now();
                   }));
  }
  return r;
}

/// `a`, awaited by a coroutine that accepts every cancellation type: a coroutine's own filter lets
/// only terminal cancellation through by default (Asio's), and the coroutine forms of tactus's
/// waits follow the filter of the coroutine that awaits them.
template <class T>
asio::awaitable<T> accepting_every_cancellation(asio::awaitable<T> a) {
  co_await asio::this_coro::reset_cancellation_state(asio::enable_total_cancellation());
  co_return co_await std::move(a);
}

/// Runs what is ready on `io` now, without moving any clock.
inline void settle(asio::io_context& io) {
  for (int i = 0; i < 8; ++i) {
    io.restart();
    io.poll();
  }
}

}  // namespace tactus_test
