// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/buffer.hpp>
#include <asio/posix/stream_descriptor.hpp>

#include <cerrno>
#include <cstddef>
#include <sys/eventfd.h>
#include <system_error>
#include <unistd.h>

// How a realtime thread wakes an executor without a lock or an allocation: it writes an eventfd
// (one system call, which neither blocks nor allocates), and the executor's reactor waits for it
// to become readable. asio::post from a foreign thread would do both: it allocates the handler
// and takes the io_context's mutex, which JACK's process thread must never do. midi::input and
// tactus::thread_channel wake their consumer this way (see detail/handoff_queue.hpp):
//
//   wakeup_fd wake{ex};
//   wake.async_wait([](std::error_code) { /* drain the queue */ });   // executor: someone waits
//   wake.signal();                                                      // any thread, realtime-safe

namespace tactus::detail {

class wakeup_fd {
 public:
  /// Throws std::system_error when no eventfd can be made.
  explicit wakeup_fd(const asio::any_io_executor& ex) : fd_(make_fd()), descriptor_(ex) {
    std::error_code ec;
    descriptor_.assign(fd_, ec);
    if (ec) {
      ::close(fd_);
      throw std::system_error(ec, "tactus: eventfd");
    }
  }

  wakeup_fd(const wakeup_fd&) = delete;
  wakeup_fd& operator=(const wakeup_fd&) = delete;

  /// Any thread, realtime-safe: makes a pending (or the next) async_wait complete. Before close().
  void signal() const noexcept { (void)::eventfd_write(fd_, 1); }

  /// Executor: completes `handler(std::error_code)` once a signal() came (at once, through a
  /// post, when one came before), taking every signal so far; operation_aborted after cancel()
  /// or close(). One wait at a time. While pending it is work.
  template <class Handler>
  void async_wait(Handler&& handler) {
    // A read, not descriptor::async_wait: Asio's epoll reactor is edge-triggered, and a wait
    // started after the edge would miss it; a read tries the eventfd first.
    descriptor_.async_read_some(
        asio::buffer(&count_, sizeof count_),
        [h = std::forward<Handler>(handler)](std::error_code ec, std::size_t) mutable { std::move(h)(ec); });
  }

  /// Executor: ends a pending wait with operation_aborted.
  void cancel() noexcept {
    std::error_code ignored;
    descriptor_.cancel(ignored);
  }

  /// Executor: ends a pending wait and closes the eventfd; signal() must not be called any more.
  void close() noexcept {
    std::error_code ignored;
    descriptor_.close(ignored);
  }

 private:
  static int make_fd() {
    const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "tactus: eventfd");
    return fd;
  }

  int fd_;
  asio::posix::stream_descriptor descriptor_;  // owns fd_ and closes it
  eventfd_t count_ = 0;                        // what a read takes: the signals since the last
};

}  // namespace tactus::detail
