// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/detail/input_impl.hpp>
#include <tactus/midi/input_options.hpp>
#include <tactus/midi/io_error.hpp>
#include <tactus/midi/message.hpp>
#include <tactus/midi/ports.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

// The MIDI input bridge: messages from a MIDI input port, handed from the backend's thread to an
// Asio executor. The backend's callback (JACK's process thread for the native JACK backend,
// RtMidi's thread otherwise) only stamps the message (native JACK: with its frame and the time of
// that frame; RtMidi: with steady_clock::now()), copies it into a preallocated bounded queue and,
// when the consumer needs waking, writes an eventfd once; it never blocks, never locks and never
// resumes a coroutine. Consume on the executor:
//
//   tactus::midi::input in(ctx.get_executor(), "circuit");        // port by name, any case
//   for (;;) {
//     auto m = co_await in.async_receive(asio::use_awaitable);    // tactus::midi::timed_message
//     std::cout << m.msg.to_string() << '\n';
//   }
//
// or install a handler:
//
//   in.on_message([](const tactus::midi::timed_message& m) { std::cout << m.msg.to_string() << '\n'; });
//
// When the queue is full the NEWEST message is dropped and counted; the error handler hears of it
// (io_errc::queue_overflow). Invariant: arrived() == received() + dropped() + queued.
// Native JACK backend, beside that: events of a repeated JACK cycle are dropped before they
// arrive (repeated()), events JACK itself lost before our callback are counted (lost_in_backend(),
// jack_midi_get_lost_event_count), and so are xruns; RtMidi's JACK client (api::jack_rtmidi)
// sees none of these: what JACK loses there is invisible. When the JACK server goes away, what
// was queued is still received, then every pending and later receive completes with
// io_errc::server_lost, and the error handler hears it once.
// An input nobody receives from keeps no work on its executor: io_context::run() returns.

namespace tactus::midi {

/// A MIDI input port bridged to an executor.
///
/// Thread-safety: member functions must be called from the executor (a strand if run() runs on
/// several threads), except the counters, which any thread may read. Handlers run there too.
/// Realtime-safety of the hand-off: RtMidi's thread takes no lock and allocates nothing for short
/// messages (a sysex slot grows once to the longest sysex it carried); it wakes the executor
/// with one eventfd write per wake-up, not per message.
///
/// The port is followed (see connected()) only while someone listens: an async_receive pending
/// or an on_message handler set. Nothing else keeps the executor busy.
class input {
 public:
  using executor_type = asio::any_io_executor;
  /// Called on the executor with an io_errc (or backend) error and a human-readable detail.
  using error_handler = std::function<void(std::error_code, const std::string&)>;

  /// Opens the first input port whose name contains `port` ignoring case (see find_input_port).
  /// Throws port_not_found (listing the ports), backend_unavailable, or std::runtime_error.
  input(executor_type ex, std::string_view port, input_options opts = {})
      : impl_(std::make_shared<detail::input_impl>(std::move(ex), std::move(opts))) {
    impl_->open_by_name(port);
  }

  /// Opens a virtual input port named options.port_name that other programs can connect to.
  input(executor_type ex, virtual_port_t, input_options opts = {})
      : impl_(std::make_shared<detail::input_impl>(std::move(ex), std::move(opts))) {
    impl_->open_virtual();
  }

  input(input&&) noexcept = default;
  input& operator=(input&& other) noexcept {
    if (this != &other) {
      close();
      impl_ = std::move(other.impl_);
    }
    return *this;
  }
  input(const input&) = delete;
  input& operator=(const input&) = delete;

  /// Closes the port: see close().
  ~input() { close(); }

  /// Closes the port and detaches from RtMidi: when close() returns, RtMidi's thread no longer
  /// runs our callback. A pending async_receive completes with asio::error::operation_aborted;
  /// messages already queued can still be received. Idempotent.
  void close() noexcept {
    if (impl_) impl_->close();
  }

  executor_type get_executor() const noexcept { return impl_->executor(); }

  /// Full name of the port we read from (JACK: "client:port"); for a virtual port, ours as others
  /// list it, "client_name:port_name" (see output::port_name).
  const std::string& port_name() const noexcept { return impl_->port_name(); }
  /// False after the port vanished, until it is back; a port opened by name is looked for
  /// every input_options::rescan_interval while someone listens (see above), and reconnected
  /// by its name, or else by what was asked for. A port that vanishes and comes back between
  /// two looks goes unnoticed: connected() stays true, though JACK dropped the connection.
  bool connected() const noexcept { return impl_->connected(); }
  /// The backend actually in use.
  api backend() const noexcept { return impl_->backend(); }

  /// Waits for the next message: signature void(std::error_code, timed_message).
  /// The completion handler runs on its associated executor (for use_awaitable, the coroutine
  /// resumes on the input's executor). A message already queued completes at once (through a
  /// post). One receive at a time: a second one completes with asio::error::in_progress.
  /// Cancellation (terminal, partial or total) completes it with asio::error::operation_aborted
  /// and loses no message. After close(), completes with operation_aborted once the queue is empty;
  /// after the JACK server went away (native backend), with io_errc::server_lost.
  template <class CompletionToken>
  auto async_receive(CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(std::error_code, timed_message)>(
        [](auto handler, std::shared_ptr<detail::input_impl> impl) { impl->start_receive(std::move(handler)); }, token,
        impl_);
  }

  /// The oldest queued message, if any, without waiting. Executor only.
  std::optional<timed_message> try_receive() { return impl_->try_receive(); }

  /// Calls `f` on the executor for every message, in order (instead of async_receive); an empty
  /// function stops it (`f` may do so itself). While set, the input keeps its executor busy.
  /// Executor only.
  void on_message(std::function<void(const timed_message&)> f) { impl_->set_message_handler(std::move(f)); }

  /// Receives overflow (io_errc::queue_overflow, sysex_too_long, with the count) when the
  /// consumer next looks (a receive, try_receive, a delivery to the handler), malformed_message,
  /// port_vanished, port_reconnected and backend errors, on the executor. Native JACK backend:
  /// also io_errc::xrun and lost_in_backend (with the counts) and server_lost (once), as soon as
  /// someone listens.
  void on_error(error_handler f) { impl_->set_error_handler(std::move(f)); }

  /// Messages RtMidi handed us. Any thread.
  std::uint64_t arrived() const noexcept { return impl_->arrived(); }
  /// Messages dropped: queue full (the newest is dropped), sysex too long, malformed. Any thread.
  std::uint64_t dropped() const noexcept { return impl_->dropped(); }
  /// Messages delivered to the consumer. Executor only.
  std::uint64_t received() const noexcept { return impl_->received(); }
  /// Native JACK backend: events of repeated JACK cycles, dropped (not in arrived()). Any thread.
  std::uint64_t repeated() const noexcept { return impl_->repeated(); }
  /// Native JACK backend: events JACK lost before they reached us (not in arrived()). Any thread.
  std::uint64_t lost_in_backend() const noexcept { return impl_->lost_in_backend(); }
  /// Native JACK backend: xruns reported to our client. Any thread.
  std::uint64_t xruns() const noexcept { return impl_->xruns(); }
  /// True once the JACK server went away (native JACK backend). Any thread.
  bool server_lost() const noexcept { return impl_->server_lost(); }

 private:
  std::shared_ptr<detail::input_impl> impl_;
};

}  // namespace tactus::midi
