// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <asio/version.hpp>

// The one place where Asio's version shows. Debian bookworm's Asio 1.22.1 is the floor; it
// keeps as_tuple, deferred, awaitable operators and channels under asio::experimental, and later
// releases moved some of them to asio::. tactus code names them through tactus::detail only.
// Tested with 1.22.1 (Debian 12) and 1.30.2 (Debian 13), where awaitable operators are still
// experimental.

#if ASIO_VERSION >= 102400
#include <asio/as_tuple.hpp>
#include <asio/deferred.hpp>
#else
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/deferred.hpp>
#endif
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/experimental/channel.hpp>

namespace tactus::detail {

#if ASIO_VERSION >= 102400
using asio::as_tuple;
using asio::as_tuple_t;
using asio::deferred;
using asio::deferred_t;
#else
using asio::experimental::as_tuple;
using asio::experimental::as_tuple_t;
using asio::experimental::deferred;
using asio::experimental::deferred_t;
#endif

/// A channel of completion signature `Sig` (still experimental in every Asio we support).
template <class Sig>
using channel = asio::experimental::channel<Sig>;

/// `using namespace tactus::detail::awaitable_operators;` for `co_await (a || b)`.
namespace awaitable_operators = asio::experimental::awaitable_operators;

}  // namespace tactus::detail
