// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/detail/signal_blocker.hpp>
#include <tactus/midi/input_options.hpp>
#include <tactus/midi/io_error.hpp>
#include <tactus/midi/jack/input_port.hpp>
#include <tactus/midi/port_watcher.hpp>
#include <tactus/midi/ports.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/cancellation_type.hpp>

#include <RtMidi.h>
#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

// The backend side of a midi::input: its client and port (RtMidi's, or the native JACK
// backend's jack::input_port), opened by name or virtual, and, for a
// port opened by name, following that port through a port_watcher: marked vanished when it is
// no longer listed, reconnected when it (or another port matching the name asked for) is listed.
// The input follows only while someone receives (follow / stop_following), so that an idle input
// keeps no work on its executor. Executor only; shared-owned so that the watch's handler can
// tell whether it still exists.

namespace tactus::midi::detail {

class input_port : public std::enable_shared_from_this<input_port> {
 public:
  using report_fn = std::function<void(std::error_code, const std::string&)>;

  /// Native JACK backend: what the jack::input_port calls (with `user`).
  struct native_hooks {
    jack::input_port::event_fn event = nullptr;
    jack::input_port::news_fn news = nullptr;
  };

  /// `callback(…, user)` is installed on every RtMidi client opened, `native` on the native
  /// port; `report` hears port_vanished, port_reconnected and backend errors.
  input_port(asio::any_io_executor ex, const input_options& opts, RtMidiIn::RtMidiCallback callback, void* user,
             report_fn report, native_hooks native)
      : ex_(std::move(ex)),
        opts_(opts),
        callback_(callback),
        user_(user),
        report_(std::move(report)),
        native_hooks_(native) {}

  input_port(const input_port&) = delete;
  input_port& operator=(const input_port&) = delete;
  ~input_port() { close(); }

  void open_by_name(std::string_view wanted) {
    wanted_ = std::string(wanted);
    client_ = open_client<RtMidiIn>(opts_.backend, opts_.client_name);
    if (client_.native()) {
      open_native();
      name_ = match_port(native_->sources(), wanted, "input");
      native_->connect_from(name_);
    } else {
      const unsigned index = find_port(*client_.midi, wanted, "input");
      name_ = client_.midi->getPortName(index);
      open(client_, index, "opening input port " + name_);
    }
    connected_ = true;
    // The watcher lists through our client (no second MIDI client); close() closes it, and so
    // lets go of this lambda, before the client goes.
    if (opts_.rescan_interval.count() > 0)
      watcher_.emplace(
          ex_, [this] { return list_ports(); }, opts_.rescan_interval);
  }

  void open_virtual() {
    client_ = open_client<RtMidiIn>(opts_.backend, opts_.client_name);
    if (client_.native()) {
      open_native();
      name_ = native_->name();  // as others list it (JACK may rename the client)
    } else {
      name_ = opts_.client_name + ":" + opts_.port_name;  // as others list it
      open(client_, std::nullopt, "opening virtual input port");
    }
    connected_ = true;
  }

  const std::string& name() const noexcept { return name_; }
  bool connected() const noexcept { return connected_; }
  api backend() const noexcept { return client_.backend; }
  /// The native JACK port (its counters), or null.
  const jack::input_port* native() const noexcept { return native_.get(); }
  bool server_lost() const noexcept { return native_ && native_->server_lost(); }

  /// Follows the port from now on (for a port opened by name with a rescan interval).
  void follow() {
    following_ = true;
    watch();
  }

  /// Stops following: the pending wait on the watcher is cancelled, which stops its timer.
  void stop_following() {
    following_ = false;
    if (watching_) watch_stop_.emit(asio::cancellation_type::total);
  }

  /// Closes the watcher and the port; when it returns, RtMidi's thread no longer calls back.
  void close() noexcept {
    closed_ = true;
    following_ = false;
    if (watcher_) watcher_->close();  // first: it lists through the client
    if (native_) native_->close();    // no callback runs afterwards; the counters stay readable
    try {
      client_.midi.reset();
    } catch (...) {
    }
  }

 private:
  void open_native() {
    jack::input_filter f{opts_.receive_sysex, opts_.receive_timing, opts_.receive_active_sensing,
                         opts_.max_sysex_bytes};
    native_ = std::make_unique<jack::input_port>(opts_.client_name, opts_.port_name, f, native_hooks_.event,
                                                 native_hooks_.news, user_);
  }

  // Sets the callback on `c` and opens its port: the `index`th listed, or a virtual one.
  void open(rtmidi_client<RtMidiIn>& c, std::optional<unsigned> index, const std::string& what) {
    auto& in = *c.midi;
    in.ignoreTypes(!opts_.receive_sysex, !opts_.receive_timing, !opts_.receive_active_sensing);
    in.setCallback(callback_, user_);
    tactus::detail::signal_blocker blocked;  // RtMidi's threads start here: with every signal blocked
    if (index) in.openPort(*index, opts_.port_name);
    else in.openVirtualPort(opts_.port_name);
    c.errors->take_or_throw(what);
  }

  // The watcher's listing. RtMidi's complaints are kept for on_change to report: the listing
  // runs inside the watcher, where no user code may run.
  std::vector<std::string> list_ports() {
    if (native_) {
      auto names = native_->sources();
      if (native_->server_lost()) throw std::runtime_error("the JACK server went away");
      return names;
    }
    auto names = port_names(*client_.midi);
    bool failed = false;
    for (auto& e : client_.errors->take()) {
      listing_errors_.push_back(e.text);
      failed = failed || !e.is_warning();
    }
    if (failed) throw std::runtime_error("listing MIDI input ports");
    return names;
  }

  void watch() {
    if (!watcher_ || watching_ || !following_) return;
    watching_ = true;
    watcher_->async_wait_change(
        asio::bind_cancellation_slot(watch_stop_.slot(), [w = weak_from_this()](std::error_code ec, port_change c) {
          if (auto self = w.lock()) self->on_change(ec, c);
        }));
  }

  void on_change(std::error_code ec, const port_change& change) {
    watching_ = false;
    for (auto& e : std::exchange(listing_errors_, {}))
      if (!closed_) report_(io_errc::backend_error, e);
    if (server_lost()) return;  // the input reports that; nothing to follow any more
    if (!ec && !closed_) track(change.ports);
    watch();  // unless stopped (or closed) meanwhile
  }

  // Marks the port vanished when it is no longer listed; while it is, connects to it again
  // when it is back, or else to any port matching what was asked for.
  void track(const std::vector<std::string>& ports) {
    if (connected_) {
      if (std::find(ports.begin(), ports.end(), name_) != ports.end()) return;
      connected_ = false;
      report_(io_errc::port_vanished, name_);
      if (closed_) return;
    }
    auto it = std::find(ports.begin(), ports.end(), name_);
    if (it == ports.end()) {
      const auto key = lower(wanted_);
      it = std::find_if(ports.begin(), ports.end(), [&](auto& n) { return lower(n).find(key) != std::string::npos; });
    }
    if (it != ports.end()) reconnect(*it);
  }

  // On a fresh client: reopening the port of a running one would unregister it while active,
  // which libjack does not survive reliably (see rtmidi_close.hpp). The old client goes before
  // the new one opens its port, so that one callback thread at most feeds the input's queue.
  void reconnect(const std::string& target) {
    if (native_) {  // libjack connects an active client's port safely: no fresh client
      try {
        native_->connect_from(target);
      } catch (const std::exception& e) {
        report_(io_errc::backend_error, e.what());
        return;
      }
      name_ = target;
      connected_ = true;
      report_(io_errc::port_reconnected, name_);
      return;
    }
    try {
      auto fresh = open_client<RtMidiIn>(opts_.backend, opts_.client_name);
      const auto names = port_names(*fresh.midi);
      const auto it = std::find(names.begin(), names.end(), target);
      if (it == names.end()) return;  // gone again: the next change tells
      client_.midi.reset();
      client_ = std::move(fresh);
      open(client_, unsigned(it - names.begin()), "reopening input port " + target);
    } catch (const std::exception& e) {
      report_(io_errc::backend_error, e.what());
      return;  // tried again at the next change of the ports
    }
    name_ = target;
    connected_ = true;
    report_(io_errc::port_reconnected, name_);
  }

  asio::any_io_executor ex_;
  input_options opts_;
  RtMidiIn::RtMidiCallback callback_;
  void* user_;
  report_fn report_;
  std::string wanted_;
  std::string name_;
  bool connected_ = false;
  std::optional<port_watcher> watcher_;
  asio::cancellation_signal watch_stop_;
  bool following_ = false;
  bool watching_ = false;  // a wait on watcher_ is pending
  bool closed_ = false;    // a report may close the input (from its error handler): then stop
  std::vector<std::string> listing_errors_;
  native_hooks native_hooks_;
  std::unique_ptr<jack::input_port> native_;  // the native JACK backend's port (api::jack)
  rtmidi_client<RtMidiIn> client_;            // last: closed before the rest goes
};

}  // namespace tactus::midi::detail
