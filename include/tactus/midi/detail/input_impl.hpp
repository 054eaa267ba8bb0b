// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/detail/wakeup_fd.hpp>
#include <tactus/midi/detail/input_handoff.hpp>
#include <tactus/midi/detail/input_port.hpp>
#include <tactus/midi/detail/pending_op.hpp>
#include <tactus/midi/input_options.hpp>
#include <tactus/midi/io_error.hpp>
#include <tactus/midi/message.hpp>
#include <tactus/midi/ports.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/error.hpp>
#include <asio/post.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

// midi::input's executor side (input.hpp is the interface). RtMidi's callback feeds the hand-off
// (input_handoff.hpp, on the core's handoff_queue) and wakes us through an eventfd
// (tactus/detail/wakeup_fd.hpp); here the one pending receive or the message handler gets the
// messages, and the error handler the reports. The port
// itself, and following it while it vanishes and comes back, is input_port.hpp. Whatever keeps
// the executor busy (the eventfd wait, following the port) runs only while someone listens: an
// idle input lets io_context::run() return. Shared-owned, so that a posted delivery never
// outlives it.

namespace tactus::midi::detail {

class input_impl : public std::enable_shared_from_this<input_impl> {
 public:
  using executor_type = asio::any_io_executor;
  using message_handler = std::function<void(const timed_message&)>;
  using error_handler = std::function<void(std::error_code, const std::string&)>;

  input_impl(executor_type ex, input_options opts)
      : ex_(std::move(ex)),
        opts_(std::move(opts)),
        handoff_(opts_.capacity, opts_.max_sysex_bytes, opts_.max_queued_sysex_bytes),
        wake_(ex_),
        port_(std::make_shared<input_port>(
            ex_, opts_, &input_impl::rtmidi_callback, this,
            [this](std::error_code e, const std::string& what) { report(e, what); },
            input_port::native_hooks{&input_impl::native_event, &input_impl::native_news})) {}

  ~input_impl() { close(); }

  void open_by_name(std::string_view wanted) { port_->open_by_name(wanted); }
  void open_virtual() { port_->open_virtual(); }

  const executor_type& executor() const noexcept { return ex_; }
  const std::string& port_name() const noexcept { return port_->name(); }
  bool connected() const noexcept { return port_->connected(); }
  api backend() const noexcept { return port_->backend(); }
  std::uint64_t arrived() const noexcept { return handoff_.arrived(); }
  std::uint64_t dropped() const noexcept { return handoff_.dropped(); }
  std::uint64_t received() const noexcept { return handoff_.received(); }
  std::uint64_t repeated() const noexcept { return port_->native() ? port_->native()->repeated() : 0; }
  std::uint64_t lost_in_backend() const noexcept { return port_->native() ? port_->native()->lost_in_backend() : 0; }
  std::uint64_t xruns() const noexcept { return port_->native() ? port_->native()->xruns() : 0; }
  bool server_lost() const noexcept { return port_->server_lost(); }

  void set_message_handler(message_handler f) {
    handler_ = std::move(f);
    ++handler_generation_;
    if (handler_) listen();
    else went_quiet();
  }
  void set_error_handler(error_handler f) { on_error_ = std::move(f); }

  std::optional<timed_message> try_receive() {
    report_overflow();
    auto m = pop();
    if (!m) report_lost();
    return m;
  }

  template <class Handler>
  void start_receive(Handler&& handler) {
    ++asked_;
    auto op = make_pending_op<timed_message>(std::forward<Handler>(handler), ex_);
    report_overflow();
    if (waiter_) {  // one receiver at a time: a second one is a usage error
      op->complete(asio::error::in_progress, {}, completion::post);
      return;
    }
    if (auto m = pop()) {
      op->complete({}, std::move(*m), completion::post);
      went_quiet();  // unless it asks again
      return;
    }
    if (closed_) {
      op->complete(asio::error::operation_aborted, {}, completion::post);
      return;
    }
    if (server_lost()) {  // after what was queued (taken above), every receive fails
      report_lost();
      op->complete(make_error_code(io_errc::server_lost), {}, completion::post);
      return;
    }
    op->on_cancellation([w = weak_from_this()] {
      if (auto self = w.lock()) self->cancel_receive();
    });
    waiter_ = std::move(op);
    listen();
  }

  void close() noexcept {
    if (closed_) return;
    closed_ = true;
    // Gate the callback out before freeing anything it touches.
    handoff_.shut();
    // Destroying RtMidiIn (quiesced: see rtmidi_close.hpp) stops RtMidi's thread, then closes.
    // We do not call cancelCallback(): RtMidi's JACK thread tests and calls the callback pointer
    // without synchronisation, so clearing it while the client runs can make it call null.
    port_->close();
    wake_.close();
    if (waiter_) std::exchange(waiter_, nullptr)->complete(asio::error::operation_aborted, {}, completion::post);
  }

 private:
  // --- RtMidi's thread ------------------------------------------------------------------------

  static void rtmidi_callback(double delta, std::vector<unsigned char>* bytes, void* user) noexcept {
    const auto now = std::chrono::steady_clock::now();
    if (!bytes) return;
    auto* self = static_cast<input_impl*>(user);
    // The wake-up runs inside the hand-off's gate: close() waits for it before closing the fd.
    self->handoff_.produce(now, delta, std::span<const std::uint8_t>(bytes->data(), bytes->size()),
                           [self](input_handoff::wake) { self->wake_.signal(); });
  }

  // --- JACK's threads (native backend) --------------------------------------------------------

  static void native_event(void* user, std::int64_t frame, std::chrono::steady_clock::time_point t, double delta,
                           std::span<const std::uint8_t> bytes) noexcept {
    auto* self = static_cast<input_impl*>(user);
    self->handoff_.produce(
        t, delta, bytes, [self](input_handoff::wake) { self->wake_.signal(); }, frame);
  }

  // An xrun, lost events, a repeated cycle or the server gone: wake the executor, which looks
  // at the counters (report_news). The eventfd stays open until the JACK client is closed.
  static void native_news(void* user) noexcept { static_cast<input_impl*>(user)->wake_.signal(); }

  // --- the executor ---------------------------------------------------------------------------

  bool listening() const noexcept { return waiter_ || handler_; }

  // Someone listens from now on: have the next message delivered and follow the port.
  void listen() {
    if (handoff_.arm()) post_deliver();  // a message slipped in before the flag was cleared
    else wait_for_wake();
    port_->follow();
  }

  // Nobody listens right now. A consumer that just had a message usually asks again from its
  // completion handler, which runs later; so decide after that (a post), and again while it keeps
  // asking, instead of stopping and restarting the port's watch for every message of a burst.
  void went_quiet() {
    if (listening() || quiet_check_) return;
    quiet_check_ = true;
    asio::post(ex_, [w = weak_from_this(), asked = asked_] {
      auto self = w.lock();
      if (!self) return;
      self->quiet_check_ = false;
      if (self->listening() || self->closed_) return;
      if (self->asked_ != asked) return self->went_quiet();  // asked (and served) meanwhile: look again
      // Nobody listens any more: stop everything that would keep the executor busy.
      if (self->waking_) self->wake_.cancel();
      self->port_->stop_following();
    });
  }

  void post_deliver() {
    asio::post(ex_, [self = shared_from_this()] { self->deliver(); });
  }

  void wait_for_wake() {
    if (waking_ || closed_) return;
    waking_ = true;
    wake_.async_wait([w = weak_from_this()](std::error_code) {
      auto self = w.lock();
      if (!self) return;
      self->waking_ = false;
      if (self->closed_) return;
      self->deliver();  // after a cancel too: someone may listen again already
    });
  }

  void deliver() {
    report_overflow();
    while (listening()) {
      auto m = pop();
      if (!m) {
        if (closed_) return;
        if (server_lost()) {  // the queue is empty: the pending receive fails, nothing more comes
          report_lost();
          if (waiter_)
            std::exchange(waiter_, nullptr)->complete(make_error_code(io_errc::server_lost), {}, completion::dispatch);
          port_->stop_following();
          return;
        }
        if (handoff_.arm()) continue;  // a push slipped in before the flag was cleared
        wait_for_wake();
        return;
      }
      // dispatch: we are on the executor; a waiting coroutine resumes at once, and usually
      // receives again before we look at listening() again.
      if (waiter_) std::exchange(waiter_, nullptr)->complete({}, std::move(*m), completion::dispatch);
      else call_handler(*m);
    }
    went_quiet();
  }

  // The handler may replace or remove itself: it is not destroyed while it runs.
  void call_handler(const timed_message& m) {
    const auto generation = handler_generation_;
    auto h = std::move(handler_);
    handler_ = nullptr;
    struct restore {
      input_impl& self;
      message_handler& h;
      std::uint64_t generation;
      ~restore() {
        if (self.handler_generation_ == generation) self.handler_ = std::move(h);
      }
    } r{*this, h, generation};
    h(m);
  }

  std::optional<timed_message> pop() {
    return handoff_.pop(
        [this] { report(io_errc::malformed_message, "bytes that are not one MIDI message were dropped"); });
  }

  void cancel_receive() {
    if (!waiter_) return;
    std::exchange(waiter_, nullptr)->complete(asio::error::operation_aborted, {}, completion::post);
    went_quiet();
  }

  void report(std::error_code e, const std::string& what) {
    if (on_error_) on_error_(e, what);
  }

  // The server's going away, once; and the native backend's news (see report_overflow).
  void report_lost() {
    report_news();
    if (!server_lost() || lost_reported_) return;
    lost_reported_ = true;
    report(io_errc::server_lost, "the JACK server went away: " + port_name() + " receives nothing more");
  }

  void report_news() {
    const auto* n = port_->native();
    if (!n) return;
    if (const auto x = n->xruns(); x != reported_xruns_) {
      report(io_errc::xrun, std::to_string(x - reported_xruns_) + " JACK xrun(s) (" + std::to_string(x) + " so far)");
      reported_xruns_ = x;
    }
    if (const auto l = n->lost_in_backend(); l != reported_lost_) {
      report(io_errc::lost_in_backend,
             std::to_string(l - reported_lost_) + " MIDI events lost inside JACK (" + std::to_string(l) + " so far)");
      reported_lost_ = l;
    }
  }

  void report_overflow() {
    report_news();
    const auto o = handoff_.take_overflow();
    if (o.too_long)
      report(io_errc::sysex_too_long, std::to_string(o.too_long) + " sysex longer than " +
                                          std::to_string(opts_.max_sysex_bytes) + " bytes dropped");
    if (o.over_budget)
      report(io_errc::queue_overflow, std::to_string(o.over_budget) + " sysex dropped, " +
                                          std::to_string(handoff_.sysex_budget()) + " bytes of sysex queued already");
    if (o.full)
      report(io_errc::queue_overflow, std::to_string(o.full) + " messages dropped, queue of " +
                                          std::to_string(handoff_.capacity()) + " full (" + std::to_string(o.total) +
                                          " dropped so far)");
  }

  executor_type ex_;
  input_options opts_;
  input_handoff handoff_;
  tactus::detail::wakeup_fd wake_;
  bool waking_ = false;       // an async_wait on wake_ is pending
  bool quiet_check_ = false;  // went_quiet()'s check is posted
  std::uint64_t asked_ = 0;   // receives started: see went_quiet()
  bool closed_ = false;
  bool lost_reported_ = false;
  std::uint64_t reported_xruns_ = 0;
  std::uint64_t reported_lost_ = 0;
  std::unique_ptr<pending_op<timed_message>> waiter_;
  message_handler handler_;
  std::uint64_t handler_generation_ = 0;  // counts set_message_handler calls (see call_handler)
  error_handler on_error_;
  std::shared_ptr<input_port> port_;  // last: closed (no more callbacks) before the rest goes
};

}  // namespace tactus::midi::detail
