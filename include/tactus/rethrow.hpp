// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <exception>

// The completion handler for a coroutine whose failure must not pass silently: it rethrows the
// coroutine's exception out of io_context::run(), where main() sees it. Never a silent detached.
//
//   asio::co_spawn(io, m.run(), tactus::rethrow);

namespace tactus {

/// Rethrows the exception a co_spawned coroutine ended with, if any; a result is discarded.
/// Thread-safe: yes (stateless). Runs where Asio runs the completion handler.
struct rethrow_t {
  void operator()(std::exception_ptr e) const {
    if (e) std::rethrow_exception(e);
  }
  template <class T>
  void operator()(std::exception_ptr e, T&&) const {
    if (e) std::rethrow_exception(e);
  }
};
inline constexpr rethrow_t rethrow{};

}  // namespace tactus
