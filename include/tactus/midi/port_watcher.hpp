// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/detail/pending_op.hpp>
#include <tactus/midi/io_error.hpp>
#include <tactus/midi/ports.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/basic_waitable_timer.hpp>
#include <asio/error.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

// Ports appearing and vanishing. RtMidi tells nobody when a port comes or goes, so a port_watcher
// lists the ports on a timer, but only while someone waits for a change: an idle watcher lists
// nothing and keeps no io_context::run() from returning. A wait completes with what changed since
// the last change reported (or since the watcher was made), so nothing is missed between two
// waits, except a port that came and went between two listings.
//
//   tactus::midi::port_watcher watch{io.get_executor(), tactus::midi::port_direction::input};
//   for (;;) {
//     auto change = co_await watch.async_wait_change(asio::use_awaitable);
//     for (auto& name : change.appeared) std::printf("+ %s\n", name.c_str());
//     for (auto& name : change.vanished) std::printf("- %s\n", name.c_str());
//   }
//
// midi::input follows the port it reads from with one (input_options::rescan_interval).

namespace tactus::midi {

/// Which ports a watcher lists: inputs (sources to read from, as input_ports()) or outputs
/// (destinations to write to, as output_ports()).
enum class port_direction { input, output };

/// What changed between two listings of the ports. Names are full port names, as input_ports()
/// lists them (JACK: "client:port").
struct port_change {
  std::vector<std::string> appeared;  ///< listed now and not before, in the order of `ports`
  std::vector<std::string> vanished;  ///< listed before and not now, in their former order
  std::vector<std::string> ports;     ///< the whole list now
};

struct port_watcher_options {
  api backend = api::automatic;
  std::string client_name = "tactus-watch";  ///< the watcher's own MIDI client, which lists
  /// How often the ports are listed while someone waits (the first listing of a wait comes this
  /// long after the previous one, or at once when that is longer ago).
  std::chrono::milliseconds interval{500};
};

namespace detail {

/// What changed from `before` to `now`; nullopt when both hold the same names (order aside).
inline std::optional<port_change> diff_ports(const std::vector<std::string>& before, std::vector<std::string> now) {
  auto absent = [](const std::vector<std::string>& in) {
    return [&in](const std::string& name) { return std::find(in.begin(), in.end(), name) == in.end(); };
  };
  port_change c;
  std::copy_if(now.begin(), now.end(), std::back_inserter(c.appeared), absent(before));
  std::copy_if(before.begin(), before.end(), std::back_inserter(c.vanished), absent(now));
  if (c.appeared.empty() && c.vanished.empty()) return std::nullopt;
  c.ports = std::move(now);
  return c;
}

/// Lists the ports of one direction through a client of its own, opened now (throws
/// backend_unavailable). A listing throws std::runtime_error when RtMidi reports an error.
template <class RtMidiT>
std::function<std::vector<std::string>()> port_lister(api backend, const std::string& client_name) {
  auto c = std::make_shared<rtmidi_client<RtMidiT>>(open_client<RtMidiT>(backend, client_name));
  if (c->native()) {  // a libjack client of its own, never activated: it only lists
    auto jc = std::make_shared<jack::client>(client_name);
    return [jc] {
      auto names = jack::list_ports(jc->get(), std::is_same_v<RtMidiT, RtMidiIn>);
      if (jc->server_lost()) throw std::runtime_error("tactus::midi: listing MIDI ports: the JACK server went away");
      return names;
    };
  }
  return [c] {
    auto names = port_names(*c->midi);
    c->errors->take_or_throw("listing MIDI ports");
    return names;
  };
}

template <class Clock>
class port_watcher_impl : public std::enable_shared_from_this<port_watcher_impl<Clock>> {
 public:
  using lister = std::function<std::vector<std::string>()>;

  port_watcher_impl(asio::any_io_executor ex, lister list, typename Clock::duration interval)
      : ex_(std::move(ex)), list_(std::move(list)), interval_(interval), timer_(ex_) {
    if (interval_ <= Clock::duration::zero())
      throw std::invalid_argument("tactus::midi::port_watcher: the interval must be positive");
    ports_ = list_();
    last_listing_ = Clock::now();
  }

  const asio::any_io_executor& executor() const noexcept { return ex_; }
  const std::vector<std::string>& ports() const noexcept { return ports_; }
  std::size_t waiting() const noexcept { return waiters_.size(); }

  template <class Handler>
  void start_wait(Handler&& handler) {
    auto op = make_pending_op<port_change>(std::forward<Handler>(handler), ex_);
    if (closed_) {
      op->complete(asio::error::operation_aborted, {}, completion::post);
      return;
    }
    op->on_cancellation([w = this->weak_from_this(), p = op.get()] {
      if (auto self = w.lock()) self->cancel(p);
    });
    waiters_.push_back(std::move(op));
    schedule();
  }

  void close() noexcept {
    if (closed_) return;
    closed_ = true;
    timer_.cancel();
    complete_all(asio::error::operation_aborted, {});
    list_ = nullptr;  // whatever the listing holds (a MIDI client) goes now
  }

 private:
  // The timer runs only while someone waits: that is what lets run() return.
  void schedule() {
    if (timing_ || waiters_.empty() || closed_) return;
    timing_ = true;
    timer_.expires_at(last_listing_ + interval_);
    timer_.async_wait([w = this->weak_from_this()](std::error_code ec) {
      if (auto self = w.lock()) self->on_timer(ec);
    });
  }

  void on_timer(std::error_code ec) {
    timing_ = false;
    if (closed_) return;
    if (!ec && !waiters_.empty()) list();  // a listing nobody awaits would swallow its change
    schedule();                            // again if someone (still, or already again after a cancel) waits
  }

  void list() {
    last_listing_ = Clock::now();
    std::vector<std::string> now;
    try {
      now = list_();
    } catch (...) {
      complete_all(make_error_code(io_errc::backend_error), {});
      return;
    }
    auto change = diff_ports(ports_, std::move(now));
    if (!change) return;
    ports_ = change->ports;
    complete_all({}, *change);
  }

  void cancel(pending_op<port_change>* p) {
    auto it = std::find_if(waiters_.begin(), waiters_.end(), [p](const auto& w) { return w.get() == p; });
    if (it == waiters_.end()) return;
    auto op = std::move(*it);
    waiters_.erase(it);
    op->complete(asio::error::operation_aborted, {}, completion::post);
    if (waiters_.empty()) timer_.cancel();  // nobody waits: no more listings, no work left
  }

  void complete_all(std::error_code ec, const port_change& c) {
    auto done = std::exchange(waiters_, {});
    for (auto& op : done) op->complete(ec, c, completion::post);
  }

  asio::any_io_executor ex_;
  lister list_;
  typename Clock::duration interval_;
  asio::basic_waitable_timer<Clock> timer_;
  std::vector<std::string> ports_;
  typename Clock::time_point last_listing_{};
  std::vector<std::unique_ptr<pending_op<port_change>>> waiters_;
  bool timing_ = false;
  bool closed_ = false;
};

}  // namespace detail

/// Watches the MIDI ports for ports appearing and vanishing (see above). `Clock` drives the
/// listing timer; tests pass tactus::testing::manual_clock with a listing of their own.
///
/// Thread-safe: no; every member on the executor (a strand if run() runs on several threads).
/// Realtime-safe: no. The listing runs on the executor and asks the MIDI server (for JACK, a
/// look at the client's copy of the graph; for ALSA, a few sequencer queries).
template <class Clock = std::chrono::steady_clock>
class basic_port_watcher {
 public:
  using executor_type = asio::any_io_executor;
  using clock_type = Clock;
  using duration = typename Clock::duration;
  /// Returns the current list of port names; may throw (a wait then completes with
  /// io_errc::backend_error).
  using lister = std::function<std::vector<std::string>()>;

  /// Watches the input or the output ports through a MIDI client of its own, which lists them
  /// once now. Throws backend_unavailable when no backend works.
  basic_port_watcher(executor_type ex, port_direction which, port_watcher_options o = {})
      : basic_port_watcher(std::move(ex),
                           which == port_direction::input ? detail::port_lister<RtMidiIn>(o.backend, o.client_name)
                                                          : detail::port_lister<RtMidiOut>(o.backend, o.client_name),
                           o.interval) {}

  /// Watches whatever `list` returns, every `interval` while someone waits; calls it once now.
  /// Throws std::invalid_argument for an interval that is not positive, and what `list` throws.
  basic_port_watcher(executor_type ex, lister list, duration interval)
      : impl_(std::make_shared<detail::port_watcher_impl<Clock>>(std::move(ex), std::move(list), interval)) {}

  basic_port_watcher(basic_port_watcher&&) noexcept = default;
  basic_port_watcher& operator=(basic_port_watcher&& other) noexcept {
    if (this != &other) {
      close();
      impl_ = std::move(other.impl_);
    }
    return *this;
  }
  basic_port_watcher(const basic_port_watcher&) = delete;
  basic_port_watcher& operator=(const basic_port_watcher&) = delete;

  /// Closes the watcher: see close().
  ~basic_port_watcher() { close(); }

  executor_type get_executor() const noexcept { return impl_->executor(); }

  /// The list as of the last change reported (at first, the listing made by the constructor).
  const std::vector<std::string>& ports() const noexcept { return impl_->ports(); }

  /// Waits until the list differs from ports(): signature void(std::error_code, port_change).
  /// The listing runs every `interval` while at least one wait is pending, never inside this
  /// call; all pending waits complete with the same change, and ports() becomes its list.
  /// A listing that throws completes every pending wait with io_errc::backend_error (and an
  /// empty change); the next wait lists again. The handler runs on its associated executor
  /// (for use_awaitable, the coroutine resumes on its own executor), always through a post.
  /// Cancellation (terminal, partial or total) completes the wait with
  /// asio::error::operation_aborted and changes nothing else: a change it did not see is
  /// reported to the next wait. When the last pending wait is cancelled, the timer stops. After
  /// close(), completes with operation_aborted.
  template <class CompletionToken>
  auto async_wait_change(CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(std::error_code, port_change)>(
        [](auto handler, std::shared_ptr<detail::port_watcher_impl<Clock>> impl) {
          impl->start_wait(std::move(handler));
        },
        token, impl_);
  }

  /// Waits pending now.
  std::size_t waiting() const noexcept { return impl_->waiting(); }

  /// Completes every pending wait with operation_aborted, stops the timer and lets the listing
  /// (and its MIDI client) go. Idempotent.
  void close() noexcept {
    if (impl_) impl_->close();
  }

 private:
  std::shared_ptr<detail::port_watcher_impl<Clock>> impl_;
};

/// The port watcher on steady_clock.
using port_watcher = basic_port_watcher<>;

}  // namespace tactus::midi
