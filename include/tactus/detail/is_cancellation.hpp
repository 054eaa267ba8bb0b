// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <asio/error.hpp>
#include <asio/experimental/channel_error.hpp>

#include <exception>
#include <system_error>

// What a coroutine cancelled by its owner ends with: asio::error::operation_aborted, or, from an
// Asio channel's receive, asio::experimental::error::channel_cancelled. Either ends a task (a
// task group's, a metronome callback) that was asked to stop, without being an error of its own.

namespace tactus::detail {

inline bool is_cancellation(const std::error_code& ec) noexcept {
  return ec == asio::error::operation_aborted || ec == asio::experimental::error::channel_cancelled;
}

inline bool is_cancellation(std::exception_ptr e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const std::system_error& x) {
    return is_cancellation(x.code());
  } catch (...) {
  }
  return false;
}

}  // namespace tactus::detail
