// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/io_error.hpp>
#include <tactus/midi/jack/output_port.hpp>
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

// The note-safe MIDI output: a sink on a MIDI output port (the native JACK backend, or RtMidi's
// ALSA or JACK client) that remembers which notes are
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
//
// Sample-accurate output (native JACK backend): send_at(m, t) writes m at the frame of the JACK
// cycle where t falls; async_send_at waits until t - output_options::lookahead, then calls it.
// midi::async_send_at (note.hpp) does the same for a beat position of a metronome.

namespace tactus::midi {

struct output_options {
  api backend = api::automatic;
  std::string client_name = "tactus";
  std::string port_name = "out";  // our own port; for a virtual port the name others see
  /// How long close() keeps the port open after the last message it sent, so that the server
  /// delivers it: RtMidi removes a JACK port one cycle after handing its data over, and a
  /// receiver running late would lose the last note-offs. close() blocks for at most this long
  /// (native JACK backend: until the last message is written and four more periods passed, at
  /// most this long plus four periods; longer when send_at scheduled messages within the next
  /// 250 ms, which close() lets go first: see send_at).
  std::chrono::milliseconds close_drain{20};
  /// How far ahead of a message's time async_send_at (and midi::async_send_at, async_note on a
  /// metronome) hands it to send_at: it must cover one JACK period plus the executor's wake-up
  /// latency, or the message goes out late (counted in late()). 5 ms covers a 128-frame period
  /// at 48 kHz (2.7 ms) on a loaded machine.
  std::chrono::milliseconds lookahead{5};
  /// Native JACK backend: messages in flight to JACK's process thread (sent or scheduled, not
  /// yet written). A send beyond it throws io_errc::queue_overflow and counts it in dropped().
  std::size_t queue_capacity = 1024;
};

namespace detail {

struct output_impl : std::enable_shared_from_this<output_impl> {
  using time_point = std::chrono::steady_clock::time_point;

  output_impl(asio::any_io_executor ex, output_options opts) : ex_(std::move(ex)), opts_(std::move(opts)) {}

  bool is_open() const noexcept { return client_.midi != nullptr || native_open_; }
  bool server_lost() const noexcept { return native_ && native_->server_lost(); }

  void check_open() const {
    if (!is_open()) throw std::runtime_error("tactus::midi: send on a closed output");
  }

  // After the server went away, no note sounds any more: the bookkeeping says so.
  void forget_notes_if_lost() const noexcept {
    if (server_lost()) notes_.clear();
  }

  void send(const message& m) {
    check_open();
    if (native_) return native_send(m, std::nullopt);
    const auto b = m.bytes();
    if (b.empty()) return;
    client_.midi->sendMessage(b.data(), b.size());
    last_send_ = std::chrono::steady_clock::now();
    client_.errors->take_or_throw("sending " + m.to_string());
    notes_.track(m);
  }

  void send_at(const message& m, time_point t) {
    check_open();
    if (native_) return native_send(m, t);
    // RtMidi: a timer on the executor sends it at t; the backend quantizes it to its period.
    const auto now = std::chrono::steady_clock::now();
    if (t <= now) {
      if (t < now) ++late_;
      return send(m);
    }
    auto timer = std::make_shared<asio::steady_timer>(ex_, t);
    send_timers_.erase(std::remove_if(send_timers_.begin(), send_timers_.end(), [](auto& w) { return w.expired(); }),
                       send_timers_.end());
    send_timers_.push_back(timer);
    timer->async_wait([w = weak_from_this(), m, timer](std::error_code ec) {
      auto self = w.lock();
      if (!self) return;
      if (ec || !self->is_open()) {
        ++self->dropped_;  // cancelled by close() or panic()
        return;
      }
      try {
        self->send(m);
      } catch (const std::exception&) {
        ++self->dropped_;
      }
    });
  }

  void native_send(const message& m, std::optional<time_point> at) {
    if (native_->server_lost()) {
      notes_.clear();
      throw std::system_error(make_error_code(io_errc::server_lost), "tactus::midi: sending " + m.to_string());
    }
    if (m.bytes().empty()) return;
    native_->push(m, at);
    last_send_ = std::chrono::steady_clock::now();
    notes_.track(m);
  }

  void release_note(int channel, int key) {
    forget_notes_if_lost();
    if (notes_.open_count(channel, key) == 0 || !is_open()) return;  // ended already (panic, close): nothing to send
    send(message::note_off(channel, key));
  }

  // `keep`: what send_at scheduled up to that long from now still goes (close: close_drain).
  void panic(std::chrono::nanoseconds keep = {}) {
    forget_notes_if_lost();
    if (!is_open() || server_lost()) return;
    for (auto& w : std::exchange(send_timers_, {}))  // what send_at scheduled (RtMidi), as the native port does
      if (auto t = w.lock()) t->cancel();
    // Scheduled note-offs go now, note-ons to come and what is after `keep` are dropped.
    if (native_) native_->cancel_scheduled(keep);
    notes_.end_all([this](const message& m) { send(m); });
  }

  // The timers of pending async_note calls with a duration, async_send_at, and RtMidi's send_at:
  // close() cancels them.
  void watch(const std::shared_ptr<asio::steady_timer>& t) {
    note_timers_.erase(std::remove_if(note_timers_.begin(), note_timers_.end(), [](auto& w) { return w.expired(); }),
                       note_timers_.end());
    note_timers_.push_back(t);
  }

  void cancel_timers() {
    for (auto& w : note_timers_)
      if (auto t = w.lock()) t->cancel();
    note_timers_.clear();
    for (auto& w : send_timers_)
      if (auto t = w.lock()) t->cancel();
    send_timers_.clear();
  }

  void close() {
    cancel_timers();
    if (native_) {
      if (!native_open_) return;
      struct closer {  // the client closes even if a send throws
        output_impl& self;
        ~closer() {
          self.native_open_ = false;
          if (!self.native_->server_lost())
            self.native_->drain(
                std::chrono::duration_cast<std::chrono::milliseconds>(close_keep(self.opts_.close_drain)));
          self.native_->close();  // returns at once after the server died
          self.notes_.clear();
        }
      } c{*this};
      panic(close_keep(opts_.close_drain));  // a STOP scheduled on the next pulse still goes
      return;
    }
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

  // What close() lets go of what send_at scheduled: up to a clock pulse at 10 BPM (250 ms), so a
  // clock master's STOP, sent at the time of the pulse it handed over, still goes.
  static std::chrono::nanoseconds close_keep(std::chrono::milliseconds drain) noexcept {
    return std::max<std::chrono::nanoseconds>(drain, std::chrono::milliseconds(250));
  }

  std::uint64_t late() const noexcept { return native_ ? native_->late() : late_; }
  std::uint64_t dropped() const noexcept { return native_ ? native_->dropped() : dropped_; }
  std::uint64_t xruns() const noexcept { return native_ ? native_->xruns() : 0; }

  asio::any_io_executor ex_;
  output_options opts_;
  std::optional<std::chrono::steady_clock::time_point> last_send_;  // for close_drain
  rtmidi_client<RtMidiOut> client_;
  std::unique_ptr<jack::output_port> native_;  // the native JACK backend's port (api::jack)
  bool native_open_ = false;
  mutable note_tracker notes_;  // mutable: cleared when the server is found gone
  std::vector<std::weak_ptr<asio::steady_timer>> note_timers_;
  std::vector<std::weak_ptr<asio::steady_timer>> send_timers_;  // RtMidi path: send_at's
  std::string port_name_;
  std::uint64_t late_ = 0;     // RtMidi path
  std::uint64_t dropped_ = 0;  // RtMidi path
};

/// For the MIDI layer's own senders (note.hpp): an output's shared state, which an operation
/// keeps alive.
struct output_access {
  template <class Output>
  static std::shared_ptr<output_impl> impl(const Output& o) noexcept {
    return o.impl_;
  }
};

/// What `f` threw, as an error code: a std::system_error's own code, else io_errc::backend_error.
template <class F>
std::error_code output_error(F&& f) noexcept {
  try {
    f();
  } catch (const std::system_error& e) {
    return e.code();
  } catch (const std::exception&) {
    return make_error_code(io_errc::backend_error);
  }
  return {};
}

}  // namespace detail

/// A note-safe MIDI output port.
///
/// Thread-safety: no; use it from one thread at a time (normally the executor's); the counters
/// (late, dropped, xruns) and server_lost() from any thread.
/// Realtime-safety: send() does not allocate for short messages. Native JACK backend: it copies
/// into a lock-free ring that JACK's process thread empties; RtMidi: its JACK backend copies into
/// a lock-free ring, and tactus takes an uncontended mutex to collect RtMidi's errors.
///
/// When the JACK server goes away (native backend): send, send_at and the note functions throw
/// std::system_error(io_errc::server_lost) at once (never block, never spin), async operations
/// complete with it, open_notes() is 0 (nothing sounds any more), close() and the destructor
/// return at once. RtMidi's JACK client (api::jack_rtmidi) cannot tell: its send spins in
/// sched_yield once its ring is full, waiting for a process thread that is gone.
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
    if (c.native()) {
      open_native();
      auto& n = *impl_->native_;
      impl_->port_name_ = detail::match_port(jack::list_ports(n.native_client(), false), port, "output");
      n.connect_to(impl_->port_name_);
      return;
    }
    const unsigned index = detail::find_port(*c.midi, port, "output");
    impl_->port_name_ = c.midi->getPortName(index);
    {
      tactus::detail::signal_blocker blocked;  // RtMidi's JACK client activates (starts its thread) here
      c.midi->openPort(index, impl_->opts_.port_name);
    }
    c.errors->take_or_throw("opening output port " + impl_->port_name_);
  }

  /// Opens a virtual output port named options.port_name that other programs connect to.
  output(executor_type ex, virtual_port_t, output_options opts = {})
      : impl_(std::make_shared<detail::output_impl>(std::move(ex), std::move(opts))) {
    auto& c = impl_->client_;
    c = detail::open_client<RtMidiOut>(impl_->opts_.backend, impl_->opts_.client_name);
    if (c.native()) {
      open_native();
      impl_->port_name_ = impl_->native_->name();  // as others list it (JACK may rename the client)
      return;
    }
    {
      tactus::detail::signal_blocker blocked;
      c.midi->openVirtualPort(impl_->opts_.port_name);
    }
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
  bool is_open() const noexcept { return impl_ && impl_->is_open(); }
  api backend() const noexcept { return impl_->client_.backend; }

  /// Sends any message now and tracks notes. Throws std::runtime_error if RtMidi reports an
  /// error or the output is closed; native JACK backend: std::system_error with
  /// io_errc::server_lost (the server went away), io_errc::queue_overflow (queue_capacity
  /// messages in flight: counted in dropped()) or io_errc::sysex_too_long (a message longer
  /// than 256 bytes, which one slot of the realtime queue carries).
  void send(const message& m) { impl_->send(m); }

  /// Sends `m` at time `t` without waiting: native JACK backend, it is queued for JACK's process
  /// thread, which writes it at the frame of the cycle where `t` falls (a receiver sees it
  /// stamped with that frame); messages at the same time go in the order given. A `t` already
  /// past when its cycle comes goes out at once (frame 0 of the next cycle) and counts in
  /// late(): hand it over at least one period ahead (see async_send_at). RtMidi backends: a
  /// timer on the executor sends it at `t` (so the executor must run), and RtMidi's JACK client
  /// writes it at frame 0 of its next period: quantized to the period. Notes are tracked at
  /// once; panic() sends the scheduled note-offs at once and drops the rest of what is scheduled;
  /// close() does the same but lets what is due within 250 ms (or close_drain, if longer) go, and
  /// waits for it (a clock master's STOP on its next pulse), note-ons aside.
  /// Throws as send(). Executor only.
  void send_at(const message& m, std::chrono::steady_clock::time_point t) { impl_->send_at(m, t); }

  /// Waits until `t` - output_options::lookahead (a steady_timer), then send_at(m, t).
  /// Signature void(std::error_code): the error send_at threw (io_errc::server_lost, ...).
  /// Completes on the handler's associated executor. Cancellation (terminal/partial/total), or
  /// close(), before the message was handed over completes with asio::error::operation_aborted
  /// and nothing is sent. After a server loss, completes with io_errc::server_lost when its wait
  /// ends.
  template <class CompletionToken>
  auto async_send_at(const message& m, std::chrono::steady_clock::time_point t, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(std::error_code)>(
        [](auto handler, std::shared_ptr<detail::output_impl> impl, message m,
           std::chrono::steady_clock::time_point t) {
          auto slot = asio::get_associated_cancellation_slot(handler);
          auto hex = asio::get_associated_executor(handler, impl->ex_);
          auto timer = std::make_shared<asio::steady_timer>(impl->ex_, t - impl->opts_.lookahead);
          impl->watch(timer);  // close() aborts the wait
          timer->async_wait(asio::bind_cancellation_slot(
              slot, asio::bind_executor(
                        hex, [impl, m = std::move(m), t, timer, h = std::move(handler)](std::error_code ec) mutable {
                          if (!ec) ec = detail::output_error([&] { impl->send_at(m, t); });
                          std::move(h)(ec);
                        })));
        },
        token, impl_, m, t);
  }

  /// How far ahead async_send_at hands a message over (output_options::lookahead).
  std::chrono::steady_clock::duration lookahead() const noexcept { return impl_->opts_.lookahead; }

  /// Scheduled messages that went out after their time (native JACK backend: written at frame 0
  /// of a cycle that began after it; RtMidi: send_at with a time already past). Any thread.
  std::uint64_t late() const noexcept { return impl_->late(); }
  /// Messages not sent: the realtime queue full (send threw queue_overflow), or scheduled and
  /// dropped by panic() or close() (see send_at). Any thread.
  std::uint64_t dropped() const noexcept { return impl_->dropped(); }
  /// Xruns the JACK server reported to our client (native JACK backend; 0 otherwise). Any thread.
  std::uint64_t xruns() const noexcept { return impl_->xruns(); }
  /// True once the JACK server went away (native JACK backend): every send throws
  /// io_errc::server_lost from then on. Any thread.
  bool server_lost() const noexcept { return impl_ && impl_->server_lost(); }
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
  std::size_t open_notes() const noexcept {
    impl_->forget_notes_if_lost();
    return impl_->notes_.open_notes();
  }
  /// How many note-ons of (channel, key) wait for a note-off.
  int open_count(int channel, int key) const noexcept {
    impl_->forget_notes_if_lost();
    return impl_->notes_.open_count(channel, key);
  }

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
          std::error_code send_error = detail::output_error([&] { impl->send(on); });
          if (send_error) {
            asio::post(hex, [h = std::move(handler), send_error]() mutable { std::move(h)(send_error); });
            return;
          }
          wait(impl->ex_, asio::bind_cancellation_slot(
                              slot, asio::bind_executor(hex, [impl, channel, key,
                                                              h = std::move(handler)](std::error_code ec) mutable {
                                const auto e = detail::output_error([&] { impl->release_note(channel, key); });
                                if (!ec) ec = e;
                                std::move(h)(ec);
                              })));
        },
        token, impl_, std::move(wait));
  }

 private:
  friend struct detail::output_access;

  void open_native() {
    impl_->native_ = std::make_unique<jack::output_port>(impl_->opts_.client_name, impl_->opts_.port_name,
                                                         impl_->opts_.queue_capacity);
    impl_->native_open_ = true;
  }

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
