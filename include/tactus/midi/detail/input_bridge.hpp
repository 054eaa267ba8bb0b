// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/detail/input_queue.hpp>
#include <tactus/midi/io_error.hpp>
#include <tactus/midi/input_options.hpp>
#include <tactus/midi/message.hpp>
#include <tactus/midi/ports.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/dispatch.hpp>
#include <asio/error.hpp>
#include <asio/execution/outstanding_work.hpp>
#include <asio/post.hpp>
#include <asio/prefer.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

// The input bridge's machinery behind tactus::midi::input (input.hpp): the RtMidi callback's
// hand-off into the bounded queue, the single wake-up post, the waiting receive operation, the
// overflow reports and the watch for a vanished port. Shared-owned, so that a posted wake-up
// never outlives it.

namespace tactus::midi {

namespace detail {

class input_impl : public std::enable_shared_from_this<input_impl> {
 public:
  using executor_type = asio::any_io_executor;
  using message_handler = std::function<void(const timed_message&)>;
  using error_handler = std::function<void(std::error_code, const std::string&)>;

  struct receive_op {
    virtual void complete(std::error_code ec, timed_message m, bool immediate) = 0;
    virtual void clear_slot() = 0;
    virtual ~receive_op() = default;
  };

  template <class Handler>
  struct receive_op_impl final : receive_op {
    receive_op_impl(Handler h, const executor_type& io_ex)
        : handler(std::move(h)),
          io_work(asio::prefer(io_ex, asio::execution::outstanding_work.tracked)),
          handler_work(
              asio::prefer(asio::get_associated_executor(handler, io_ex), asio::execution::outstanding_work.tracked)) {}

    void complete(std::error_code ec, timed_message m, bool immediate) override {
      clear_slot();
      auto ex = std::move(handler_work);
      io_work = {};
      auto f = [h = std::move(handler), ec, m = std::move(m)]() mutable { std::move(h)(ec, std::move(m)); };
      // Never inside the initiating function: post then. From the wake-up handler (already on
      // the executor) dispatch, which resumes the waiting coroutine at once.
      if (immediate) asio::post(ex, std::move(f));
      else asio::dispatch(ex, std::move(f));
    }
    void clear_slot() override {
      auto slot = asio::get_associated_cancellation_slot(handler);
      if (slot.is_connected()) slot.clear();
    }

    Handler handler;
    decltype(asio::prefer(std::declval<executor_type>(), asio::execution::outstanding_work.tracked)) io_work;
    std::decay_t<decltype(asio::prefer(std::declval<asio::associated_executor_t<Handler, executor_type>>(),
                                       asio::execution::outstanding_work.tracked))>
        handler_work;
  };

  input_impl(executor_type ex, input_options opts)
      : ex_(std::move(ex)), opts_(std::move(opts)), queue_(opts_.capacity, opts_.max_sysex_bytes), rescan_(ex_) {}

  ~input_impl() { close(); }

  void open_by_name(std::string_view wanted) {
    wanted_ = std::string(wanted);
    client_ = open_client<RtMidiIn>(opts_.backend, opts_.client_name);
    const unsigned index = find_port(*client_.midi, wanted, "input");
    connected_name_ = client_.midi->getPortName(index);
    start(false, index);
  }

  void open_virtual() {
    client_ = open_client<RtMidiIn>(opts_.backend, opts_.client_name);
    connected_name_ = opts_.client_name + ":" + opts_.port_name;  // as others list it
    start(true, 0);
  }

  const executor_type& executor() const noexcept { return ex_; }
  const std::string& port_name() const noexcept { return connected_name_; }
  bool connected() const noexcept { return connected_; }
  api backend() const noexcept { return client_.backend; }

  // Counters. arrived_ is incremented last in the callback with release, so whoever reads it
  // with acquire also sees that message's dropped_ increment or queue entry.
  std::uint64_t arrived() const noexcept { return arrived_.load(std::memory_order_acquire); }
  std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_acquire); }
  std::uint64_t received() const noexcept { return received_; }

  void set_message_handler(message_handler f) {
    handler_ = std::move(f);
    if (handler_) {
      handler_work_ = asio::prefer(ex_, asio::execution::outstanding_work.tracked);
      post_deliver();  // messages may already be waiting
    } else {
      handler_work_ = {};
    }
  }
  void set_error_handler(error_handler f) { on_error_ = std::move(f); }

  std::optional<timed_message> try_receive() {
    report_overflow();
    return pop();
  }

  template <class Handler>
  void start_receive(Handler&& handler) {
    using op_type = receive_op_impl<std::decay_t<Handler>>;
    auto op = std::make_unique<op_type>(std::forward<Handler>(handler), ex_);
    report_overflow();
    if (waiter_) {  // one receiver at a time: a second one is a usage error
      op->complete(asio::error::in_progress, {}, true);
      return;
    }
    if (auto m = pop()) {
      op->complete({}, std::move(*m), true);
      return;
    }
    if (closed_) {
      op->complete(asio::error::operation_aborted, {}, true);
      return;
    }
    auto slot = asio::get_associated_cancellation_slot(op->handler);
    if (slot.is_connected()) {
      slot.assign([w = weak_from_this()](asio::cancellation_type type) {
        if ((type & (asio::cancellation_type::terminal | asio::cancellation_type::partial |
                     asio::cancellation_type::total)) == asio::cancellation_type::none)
          return;
        if (auto self = w.lock()) self->cancel_waiter();
      });
    }
    waiter_ = std::move(op);
    arm();
  }

  void close() noexcept {
    if (closed_) return;
    closed_ = true;
    // Gate the callback out before freeing anything it touches. seq_cst on closing_ and on the
    // callback's in_callback_ increment: either the callback's increment is seen below, or the
    // callback sees closing_ (a store-load pair, which release/acquire does not order).
    closing_.store(true, std::memory_order_seq_cst);
    // acquire: pairs with the callback's release decrement; its queue writes happened before.
    while (in_callback_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
    // Destroying RtMidiIn (quiesced: see rtmidi_close.hpp) stops RtMidi's thread, then closes.
    // We do not call cancelCallback(): RtMidi's JACK thread tests and calls the callback pointer
    // without synchronisation, so clearing it while the client runs can make it call null.
    try {
      client_.midi.reset();
    } catch (...) {
    }
    rescan_.cancel();
    handler_work_ = {};
    if (waiter_) std::exchange(waiter_, nullptr)->complete(asio::error::operation_aborted, {}, true);
  }

  static void rtmidi_callback(double delta, std::vector<unsigned char>* bytes, void* user) noexcept {
    const auto now = std::chrono::steady_clock::now();
    auto* self = static_cast<input_impl*>(user);
    // seq_cst: see close().
    self->in_callback_.fetch_add(1, std::memory_order_seq_cst);
    if (!self->closing_.load(std::memory_order_seq_cst) && bytes && !bytes->empty()) self->push(now, delta, *bytes);
    // release: our queue writes happen before close() sees the count fall to zero.
    self->in_callback_.fetch_sub(1, std::memory_order_release);
  }

 private:
  // --- RtMidi's thread ------------------------------------------------------------------------

  void push(std::chrono::steady_clock::time_point now, double delta, const std::vector<unsigned char>& b) noexcept {
    input_queue::push_result r;
    try {
      r = queue_.try_push(std::span<const std::uint8_t>(b.data(), b.size()), now, delta);
    } catch (...) {  // bad_alloc growing a sysex slot
      r = input_queue::push_result::too_long;
    }
    if (r != input_queue::push_result::ok) {
      if (r == input_queue::push_result::too_long)
        // relaxed: only a count; published by arrived_'s release below.
        too_long_.fetch_add(1, std::memory_order_relaxed);
      // relaxed: published by arrived_'s release below.
      dropped_.fetch_add(1, std::memory_order_relaxed);
      // release: the consumer's report acquires this flag and must see the count above.
      arrived_.fetch_add(1, std::memory_order_release);
      // acq_rel: a single post per report; the report handler clears the flag with acq_rel.
      if (!overflow_signalled_.exchange(true, std::memory_order_acq_rel))
        post_safely([](input_impl& s) { s.report_overflow(); });
      return;
    }
    // release: see the counters' comment.
    arrived_.fetch_add(1, std::memory_order_release);
    // acq_rel: release publishes the push to the consumer that clears the flag (it acquires);
    // the RMW order on the flag decides who wakes whom (see arm()).
    if (!signalled_.exchange(true, std::memory_order_acq_rel)) post_safely([](input_impl& s) { s.deliver(); });
  }

  template <class F>
  void post_safely(F f) noexcept {
    try {
      asio::post(ex_, [self = shared_from_this(), f]() { f(*self); });
    } catch (...) {
      // Allocation failed: the consumer finds the message on its next receive.
    }
  }

  // --- the executor ---------------------------------------------------------------------------

  void post_deliver() {
    asio::post(ex_, [self = shared_from_this()]() { self->deliver(); });
  }

  // Called when the consumer is about to wait: lets the next push post a wake-up. If a push
  // slipped in before (and did not post because the flag was still set), deliver it ourselves.
  // acq_rel: if a producer's exchange came first in the flag's order we acquire its push;
  // if ours came first the producer reads false and posts.
  void arm() {
    signalled_.exchange(false, std::memory_order_acq_rel);
    if (!queue_.empty()) post_deliver();
  }

  void deliver() {
    report_overflow();
    while (!closed_ || !queue_.empty()) {
      if (!waiter_ && !handler_) return;  // nobody listening: signalled_ stays set, no more posts
      auto m = pop();
      if (!m) {
        if (closed_) return;
        arm();
        return;
      }
      if (waiter_) std::exchange(waiter_, nullptr)->complete({}, std::move(*m), false);
      else handler_(*m);
    }
  }

  std::optional<timed_message> pop() {
    for (;;) {
      auto p = queue_.try_pop();
      if (!p) return std::nullopt;
      if (p->msg) {
        ++received_;
        return timed_message{std::move(*p->msg), p->time, p->delta_seconds};
      }
      // relaxed: only counted; the executor is the only other writer-free reader here.
      dropped_.fetch_add(1, std::memory_order_relaxed);
      ++reported_dropped_;  // reported here, not as an overflow
      report(io_errc::malformed_message, "bytes that are not one MIDI message were dropped");
    }
  }

  void cancel_waiter() {
    if (waiter_) std::exchange(waiter_, nullptr)->complete(asio::error::operation_aborted, {}, true);
  }

  void report(io_errc e, const std::string& what) {
    if (on_error_) on_error_(e, what);
  }

  void report_overflow() {
    // acq_rel: acquire the producer's count; clearing first means a later drop posts again.
    overflow_signalled_.exchange(false, std::memory_order_acq_rel);
    const auto d = dropped_.load(std::memory_order_acquire);
    const auto tl = too_long_.load(std::memory_order_acquire);
    if (d == reported_dropped_) return;
    const auto n = d - reported_dropped_;
    reported_dropped_ = d;
    const auto new_too_long = tl - reported_too_long_;
    reported_too_long_ = tl;
    if (new_too_long)
      report(io_errc::sysex_too_long, std::to_string(new_too_long) + " sysex longer than " +
                                          std::to_string(opts_.max_sysex_bytes) + " bytes dropped");
    if (n > new_too_long)
      report(io_errc::queue_overflow, std::to_string(n - new_too_long) + " messages dropped, queue of " +
                                          std::to_string(queue_.capacity()) + " full (" + std::to_string(d) +
                                          " dropped so far)");
  }

  void configure(RtMidiIn& in) {
    in.ignoreTypes(!opts_.receive_sysex, !opts_.receive_timing, !opts_.receive_active_sensing);
    in.setCallback(&input_impl::rtmidi_callback, this);
  }

  void start(bool is_virtual, unsigned index) {
    auto& in = *client_.midi;
    configure(in);
    if (is_virtual) in.openVirtualPort(opts_.port_name);
    else in.openPort(index, opts_.port_name);
    client_.errors->take_or_throw(is_virtual ? "opening virtual input port" : "opening input port " + connected_name_);
    connected_ = true;
    if (!is_virtual && opts_.rescan_interval.count() > 0) schedule_rescan();
  }

  void schedule_rescan() {
    rescan_.expires_after(opts_.rescan_interval);
    rescan_.async_wait([w = weak_from_this()](std::error_code ec) {
      auto self = w.lock();
      if (ec || !self || self->closed_) return;
      self->rescan();
      self->schedule_rescan();
    });
  }

  void rescan() {
    auto& in = *client_.midi;
    for (auto& e : client_.errors->take()) report(io_errc::backend_error, e.text);
    const auto names = port_names(in);
    if (connected_) {
      if (std::find(names.begin(), names.end(), connected_name_) == names.end()) {
        connected_ = false;
        report(io_errc::port_vanished, connected_name_);
      }
      return;
    }
    // Back under the same name first, else anything matching what was asked for.
    auto it = std::find(names.begin(), names.end(), connected_name_);
    if (it == names.end()) {
      const auto key = lower(wanted_);
      it = std::find_if(names.begin(), names.end(), [&](auto& n) { return lower(n).find(key) != std::string::npos; });
    }
    if (it == names.end()) return;
    const std::string target = *it;
    // On a fresh client: reopening the port of a running one would unregister it while active,
    // which libjack does not survive reliably (see rtmidi_close.hpp).
    try {
      client_.midi.reset();
      client_ = open_client<RtMidiIn>(opts_.backend, opts_.client_name);
      configure(*client_.midi);
      client_.midi->openPort(find_port(*client_.midi, target, "input"), opts_.port_name);
      client_.errors->take_or_throw("reopening input port " + target);
    } catch (const std::exception& e) {
      report(io_errc::backend_error, e.what());
      return;  // tried again at the next rescan
    }
    connected_name_ = target;
    connected_ = true;
    report(io_errc::port_reconnected, connected_name_);
  }

  executor_type ex_;
  input_options opts_;
  input_queue queue_;
  // Written by RtMidi's thread.
  std::atomic<std::uint64_t> arrived_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> too_long_{0};
  std::atomic<bool> signalled_{false};
  std::atomic<bool> overflow_signalled_{false};
  std::atomic<int> in_callback_{0};
  std::atomic<bool> closing_{false};
  // Executor only.
  std::uint64_t received_ = 0;
  std::uint64_t reported_dropped_ = 0;
  std::uint64_t reported_too_long_ = 0;
  bool closed_ = false;
  bool connected_ = false;
  std::string wanted_;
  std::string connected_name_;
  std::unique_ptr<receive_op> waiter_;
  message_handler handler_;
  error_handler on_error_;
  decltype(asio::prefer(std::declval<executor_type>(), asio::execution::outstanding_work.tracked)) handler_work_;
  asio::steady_timer rescan_;
  rtmidi_client<RtMidiIn> client_;  // last: destroyed (closing the port) before what its callback uses
};

}  // namespace detail

}  // namespace tactus::midi
