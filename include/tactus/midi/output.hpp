// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/io_error.hpp>
#include <tactus/midi/message.hpp>
#include <tactus/midi/note_tracker.hpp>
#include <tactus/midi/ports.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

// The note-safe MIDI output: a sink on an RtMidi output port that remembers which notes are
// sounding, so that none is left hanging. On close(), panic() and destruction every open note
// gets its own note-off, then each channel used gets All Notes Off (CC 123) and Sustain off
// (CC 64 = 0). async_note() plays one note and sends its note-off even when cancelled:
//
//   tactus::midi::output out(ctx.get_executor(), "synth");
//   co_await out.async_note(0, 60, 100, 250ms, asio::use_awaitable);
//
// Ctrl-C: let an asio::signal_set cancel the playing coroutines (bind a cancellation_signal to
// co_spawn and emit cancellation_type::terminal from the signal handler). Each async_note sends
// its note-off and completes with operation_aborted; the output's destructor, run as the
// exception unwinds or when main ends, sends the remaining note-offs, CC 123 and CC 64.

namespace tactus::midi {

struct output_options {
  api backend = api::automatic;
  std::string client_name = "tactus";
  std::string port_name = "out";  // our own port; for a virtual port the name others see
  /// How long close() keeps the port open after the last message it sent, so that the server
  /// delivers it: RtMidi removes a JACK port one cycle after handing its data over, and a
  /// receiver running late would lose the last note-offs. close() blocks for at most this long.
  std::chrono::milliseconds close_drain{20};
};

namespace detail {

struct output_impl {
  output_impl(asio::any_io_executor ex, output_options opts) : ex_(std::move(ex)), opts_(std::move(opts)) {}

  void send(const message& m) {
    if (!client_.midi) throw std::runtime_error("tactus::midi: send on a closed output");
    const auto b = m.bytes();
    if (b.empty()) return;
    client_.midi->sendMessage(b.data(), b.size());
    last_send_ = std::chrono::steady_clock::now();
    client_.errors->take_or_throw("sending " + m.to_string());
    notes_.track(m);
  }

  void release_note(int channel, int key) {
    if (notes_.open_count(channel, key) == 0 || !client_.midi) return;  // ended already (panic, close): nothing to send
    send(message::note_off(channel, key));
  }

  void panic() {
    if (!client_.midi) return;
    notes_.end_all([this](const message& m) { send(m); });
  }

  // The timers of pending async_note calls with a duration: close() cancels them.
  void watch(const std::shared_ptr<asio::steady_timer>& t) {
    note_timers_.erase(std::remove_if(note_timers_.begin(), note_timers_.end(), [](auto& w) { return w.expired(); }),
                       note_timers_.end());
    note_timers_.push_back(t);
  }

  void close() {
    for (auto& w : note_timers_)
      if (auto t = w.lock()) t->cancel();
    note_timers_.clear();
    if (!client_.midi) return;
    struct closer {  // the port closes even if a send throws
      output_impl& self;
      ~closer() {
        try {
          // Let the server deliver what was just sent (see output_options::close_drain).
          if (self.last_send_) std::this_thread::sleep_until(*self.last_send_ + self.opts_.close_drain);
          self.client_.midi.reset();
        } catch (...) {
        }
      }
    } c{*this};
    panic();
  }

  asio::any_io_executor ex_;
  output_options opts_;
  std::optional<std::chrono::steady_clock::time_point> last_send_;  // for close_drain
  rtmidi_client<RtMidiOut> client_;
  note_tracker notes_;
  std::vector<std::weak_ptr<asio::steady_timer>> note_timers_;
  std::string port_name_;
};

}  // namespace detail

/// A note-safe RtMidi output port.
///
/// Thread-safety: no; use it from one thread at a time (normally the executor's).
/// Realtime-safety: send() does not allocate for short messages (RtMidi's JACK backend copies
/// into a lock-free ring) but takes an uncontended mutex to collect RtMidi's errors.
/// Note accounting: a note_tracker (note-ons counted per (channel, key); note-on twice then
/// note-off once leaves the key open, and panic() sends ONE note-off for it).
class output {
 public:
  using executor_type = asio::any_io_executor;

  /// Connects to the first output port whose name contains `port` ignoring case (see
  /// find_output_port). Throws port_not_found (listing the ports), backend_unavailable or
  /// std::runtime_error.
  output(executor_type ex, std::string_view port, output_options opts = {})
      : impl_(std::make_shared<detail::output_impl>(std::move(ex), std::move(opts))) {
    auto& c = impl_->client_;
    c = detail::open_client<RtMidiOut>(impl_->opts_.backend, impl_->opts_.client_name);
    const unsigned index = detail::find_port(*c.midi, port, "output");
    impl_->port_name_ = c.midi->getPortName(index);
    c.midi->openPort(index, impl_->opts_.port_name);
    c.errors->take_or_throw("opening output port " + impl_->port_name_);
  }

  /// Opens a virtual output port named options.port_name that other programs connect to.
  output(executor_type ex, virtual_port_t, output_options opts = {})
      : impl_(std::make_shared<detail::output_impl>(std::move(ex), std::move(opts))) {
    auto& c = impl_->client_;
    c = detail::open_client<RtMidiOut>(impl_->opts_.backend, impl_->opts_.client_name);
    c.midi->openVirtualPort(impl_->opts_.port_name);
    c.errors->take_or_throw("opening virtual output port");
    impl_->port_name_ = impl_->opts_.client_name + ":" + impl_->opts_.port_name;  // as others list it
  }

  output(output&&) noexcept = default;
  output& operator=(output&& other) noexcept {
    if (this != &other) {
      close_noexcept();
      impl_ = std::move(other.impl_);
    }
    return *this;
  }
  output(const output&) = delete;
  output& operator=(const output&) = delete;

  /// Sends the note-offs, CC 123 and CC 64 (as panic()) and closes the port; never throws.
  ~output() { close_noexcept(); }

  executor_type get_executor() const noexcept { return impl_->ex_; }
  /// Full name of the port we write to (JACK: "client:port"); for a virtual port, ours as others
  /// list it, "client_name:port_name" (what they open by name; under ALSA the listing adds the
  /// client and port numbers; JACK renames a second client of the same name "name-01").
  const std::string& port_name() const noexcept { return impl_->port_name_; }
  bool is_open() const noexcept { return impl_ && impl_->client_.midi != nullptr; }
  api backend() const noexcept { return impl_->client_.backend; }

  /// Sends any message now and tracks notes. Throws std::runtime_error if RtMidi reports an
  /// error or the output is closed.
  void send(const message& m) { impl_->send(m); }
  void note_on(int channel, int key, int velocity) { send(message::note_on(channel, key, velocity)); }
  void note_off(int channel, int key, int velocity = 0) { send(message::note_off(channel, key, velocity)); }
  void control_change(int channel, int controller, int value) {
    send(message::control_change(channel, controller, value));
  }
  void program_change(int channel, int program) { send(message::program_change(channel, program)); }
  void pitch_bend(int channel, int value) { send(message::pitch_bend(channel, value)); }

  /// Ends every sounding note: one note-off per open (channel, key), then CC 123 and CC 64 = 0
  /// on each channel used since the last panic. The output stays open.
  void panic() { impl_->panic(); }

  /// panic(), then closes the port. Idempotent. Notes still in async_note send nothing more;
  /// those with a duration complete at once with operation_aborted, those waiting on another
  /// clock (async_note_with, midi::async_note) when their wait ends.
  void close() { impl_->close(); }

  /// Number of (channel, key) pairs sounding.
  std::size_t open_notes() const noexcept { return impl_->notes_.open_notes(); }
  /// How many note-ons of (channel, key) wait for a note-off.
  int open_count(int channel, int key) const noexcept { return impl_->notes_.open_count(channel, key); }

  /// Plays one note: note-on now, note-off after `duration` (steady_clock). Signature
  /// void(std::error_code). Completes on the handler's associated executor (for use_awaitable,
  /// the coroutine resumes on the output's executor). Cancellation (terminal/partial/total) ends
  /// the wait early: the note-off is still sent, then it completes with
  /// asio::error::operation_aborted. The note-off is sent only if the note is still open (a
  /// panic() or close() in between already ended it). Throws std::invalid_argument at once for
  /// out-of-range arguments.
  template <class CompletionToken>
  auto async_note(int channel, int key, int velocity, std::chrono::steady_clock::duration duration,
                  CompletionToken&& token) {
    return async_note_with(
        channel, key, velocity,
        [duration, impl = impl_](const executor_type& ex, auto handler) {
          auto timer = std::make_shared<asio::steady_timer>(ex, duration);
          impl->watch(timer);  // close() aborts the wait
          auto slot = asio::get_associated_cancellation_slot(handler);
          auto hex = asio::get_associated_executor(handler, ex);
          timer->async_wait(asio::bind_cancellation_slot(
              slot, asio::bind_executor(
                        hex, [timer, h = std::move(handler)](std::error_code ec) mutable { std::move(h)(ec); })));
        },
        std::forward<CompletionToken>(token));
  }

  /// The seam for other clocks (a duration in beats of a metronome): as async_note, but the
  /// note lasts until `wait(executor, handler)` completes `handler` with a std::error_code.
  /// `wait` must start an asynchronous wait that honours the handler's associated cancellation
  /// slot and executor, e.g. [&](auto ex, auto h) { metro.async_wait_beats(2, std::move(h)); }.
  template <class Wait, class CompletionToken>
  auto async_note_with(int channel, int key, int velocity, Wait wait, CompletionToken&& token) {
    const auto on = message::note_on(channel, key, velocity);  // validates the arguments
    return asio::async_initiate<CompletionToken, void(std::error_code)>(
        [channel, key, on](auto handler, std::shared_ptr<detail::output_impl> impl, Wait wait) {
          auto slot = asio::get_associated_cancellation_slot(handler);
          auto hex = asio::get_associated_executor(handler, impl->ex_);
          std::error_code send_error;
          try {
            impl->send(on);
          } catch (const std::exception&) {
            send_error = make_error_code(io_errc::backend_error);
          }
          if (send_error) {
            asio::post(hex, [h = std::move(handler), send_error]() mutable { std::move(h)(send_error); });
            return;
          }
          wait(impl->ex_, asio::bind_cancellation_slot(
                              slot, asio::bind_executor(
                                        hex, [impl, channel, key, h = std::move(handler)](std::error_code ec) mutable {
                                          try {
                                            impl->release_note(channel, key);
                                          } catch (const std::exception&) {
                                            if (!ec) ec = make_error_code(io_errc::backend_error);
                                          }
                                          std::move(h)(ec);
                                        })));
        },
        token, impl_, std::move(wait));
  }

 private:
  void close_noexcept() noexcept {
    if (!impl_) return;
    try {
      impl_->close();
    } catch (...) {
    }
  }

  std::shared_ptr<detail::output_impl> impl_;
};

}  // namespace tactus::midi
