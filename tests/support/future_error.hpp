// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <chrono>
#include <future>
#include <stdexcept>
#include <system_error>

// Test support: what an operation completed with through asio::use_future. Asio sets the future
// on its system executor, another thread: wait for it first.
//
//   auto f = in.async_receive(asio::bind_cancellation_slot(cancel.slot(), asio::use_future));
//   cancel.emit(asio::cancellation_type::total);
//   CHECK(tactus_tests::future_error(f) == asio::error::operation_aborted);

namespace tactus_tests {

/// The error code `f` holds (a std::system_error), or no error when it holds a value. Throws
/// std::runtime_error when `f` is not ready within `timeout`.
template <class T>
std::error_code future_error(std::future<T>& f, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  if (f.wait_for(timeout) != std::future_status::ready) throw std::runtime_error("future_error: not ready");
  try {
    f.get();
    return {};
  } catch (const std::system_error& e) {
    return e.code();
  }
}

}  // namespace tactus_tests
