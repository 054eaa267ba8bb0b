// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/detail/signal_blocker.hpp>
#include <tactus/midi/jack/cycle.hpp>
#include <tactus/midi/jack_messages.hpp>

#include <jack/jack.h>
#include <jack/midiport.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <pthread.h>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

// The native JACK backend's client: one libjack client per tactus port (midi::input,
// midi::output), opened without starting a server, with every signal blocked while libjack
// creates its threads (so that SIGINT and SIGTERM reach the application's own threads, and no
// call of ours into libjack is interrupted). It owns the process, xrun and shutdown callbacks:
//
// - process: the port's function, on JACK's realtime thread (see jack/output_port.hpp and
//   jack/input_port.hpp);
// - xrun: counted (xruns()), and the port's `news` hook is called;
// - shutdown (jack_on_info_shutdown, on libjack's thread when the server goes away): sets
//   server_lost(), calls `news`; never calls libjack from there.
//
// Closing: jack_client_close() (deactivates first; we never unregister a port of an active
// client: see rtmidi_close.hpp). After the server died, jack_client_close returns at once (its
// socket is closed): tests/midi_jack_server_loss_test.cpp checks it.
//
// The cycle times are converted to steady_clock (current_cycle): JACK's clock is not
// steady_clock's on Linux (see steady_minus_jack_usecs).
//
// Also the port listing through libjack: MIDI ports that are outputs (sources an input reads)
// or inputs (destinations an output writes), full names "client:port", in jack_get_ports' order.
// Internal to the MIDI layer: users open midi::input and midi::output.

namespace tactus::midi::jack {

/// Hooks of the port owning a client. `process` runs on JACK's process thread; `news` on the
/// process thread (xrun) or libjack's thread (shutdown): both realtime-safe, non-blocking.
struct client_hooks {
  void (*process)(jack_nframes_t nframes, void* user) noexcept = nullptr;
  void* process_user = nullptr;
  void (*news)(void* user) noexcept = nullptr;
  void* news_user = nullptr;
};

/// Why a client could not be opened, in one line quoting libjack.
inline std::string open_failure(jack_status_t status, const std::vector<std::string>& lines) {
  const char* server = std::getenv("JACK_DEFAULT_SERVER");
  std::string why = (status & JackServerFailed) || (status & JackServerError)
                        ? std::string("no JACK server \"") + (server && *server ? server : "default") + "\" answers"
                        : "jack_client_open failed (status 0x" + std::to_string(unsigned(status)) + ")";
  if (!lines.empty()) why += " (libjack: " + lines.front() + ")";
  return why;
}

/// A libjack client. Thread-safe: no (the owner's thread), except the counters and
/// server_lost(). Realtime-safe: no.
class client {
 public:
  /// Opens a client named `name` (JACK may rename it "name-01" when taken). Throws
  /// std::runtime_error quoting libjack when no server answers.
  explicit client(const std::string& name) {
    jack_message_capture capture;
    jack_status_t status{};
    {
      tactus::detail::signal_blocker blocked;  // libjack's threads start with every signal blocked
      c_ = jack_client_open(name.c_str(), JackNoStartServer, &status);
    }
    if (!c_) throw std::runtime_error("tactus::midi: jack: " + open_failure(status, capture.lines()));
    name_ = jack_get_client_name(c_);
    jack_on_info_shutdown(c_, &client::on_shutdown, this);
    jack_set_xrun_callback(c_, &client::on_xrun, this);
    jack_set_process_callback(c_, &client::on_process, this);
  }

  client(const client&) = delete;
  client& operator=(const client&) = delete;
  ~client() { close(); }

  jack_client_t* get() const noexcept { return c_; }
  /// Our client's name as JACK has it.
  const std::string& name() const noexcept { return name_; }

  /// Sets the hooks; before activate() only.
  void set_hooks(client_hooks h) noexcept { hooks_ = h; }

  /// Starts the process callback. Throws std::runtime_error.
  void activate() {
    int r;
    {
      tactus::detail::signal_blocker blocked;  // the process thread starts here
      r = jack_activate(c_);
    }
    if (r != 0) throw std::runtime_error("tactus::midi: jack: cannot activate client " + name_);
  }

  /// Registers a MIDI port; `input` for one we read from. Throws std::runtime_error.
  jack_port_t* register_midi_port(const std::string& port_name, bool input) {
    jack_message_capture capture;
    jack_port_t* p;
    {
      tactus::detail::signal_blocker blocked;  // a signal must not interrupt libjack's request
      p = jack_port_register(c_, port_name.c_str(), JACK_DEFAULT_MIDI_TYPE, input ? JackPortIsInput : JackPortIsOutput,
                             0);
    }
    if (!p) {
      std::string why = "tactus::midi: jack: cannot register port " + name_ + ":" + port_name;
      if (!capture.lines().empty()) why += " (libjack: " + capture.lines().front() + ")";
      throw std::runtime_error(why);
    }
    return p;
  }

  /// Connects `from` (a source) to `to` (a destination), full names. Throws std::runtime_error.
  void connect(const std::string& from, const std::string& to) {
    jack_message_capture capture;
    int r;
    {
      tactus::detail::signal_blocker blocked;
      r = jack_connect(c_, from.c_str(), to.c_str());
    }
    if (r != 0 && r != EEXIST) {
      std::string why = "tactus::midi: jack: cannot connect " + from + " to " + to;
      if (server_lost()) why += ": the JACK server went away";
      else if (!capture.lines().empty()) why += " (libjack: " + capture.lines().front() + ")";
      throw std::runtime_error(why);
    }
  }

  /// The server went away (jack_on_info_shutdown). Any thread.
  bool server_lost() const noexcept { return lost_.load(std::memory_order_acquire); }
  /// Xruns the server reported to this client. Any thread.
  std::uint64_t xruns() const noexcept { return xruns_.load(std::memory_order_relaxed); }

  /// Closes the client: no callback runs after it returns. Idempotent.
  void close() noexcept {
    if (!c_) return;
    jack_message_capture capture;  // a dead server's complaints go nowhere
    {
      tactus::detail::signal_blocker blocked;
      jack_client_close(c_);
    }
    c_ = nullptr;
  }

 private:
  // jack2 may stop a client's threads with pthread_cancel (JackPosixThread::Kill; its threads are
  // asynchronously cancellable by default). Cancelled inside our callbacks, the forced unwind
  // would cross noexcept frames and terminate, or leave the input's hand-off gate entered (seen
  // under ThreadSanitizer while closing an input that received). So each callback runs with
  // cancellation disabled, and enables it again last, in a frame that is not noexcept and holds
  // nothing to destroy: a pending cancellation then unwinds from there into libjack, as jack2
  // expects.
  static int on_process(jack_nframes_t nframes, void* self) {
    int old = 0;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    process_now(nframes, static_cast<client*>(self));
    pthread_setcancelstate(old, nullptr);
    return 0;
  }
  static int on_xrun(void* self) {
    int old = 0;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    xrun_now(static_cast<client*>(self));
    pthread_setcancelstate(old, nullptr);
    return 0;
  }
  static void on_shutdown(jack_status_t, const char*, void* self) {
    int old = 0;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    shutdown_now(static_cast<client*>(self));
    pthread_setcancelstate(old, nullptr);
  }

  static void process_now(jack_nframes_t nframes, client* me) noexcept {
    if (me->hooks_.process) me->hooks_.process(nframes, me->hooks_.process_user);
  }
  static void xrun_now(client* me) noexcept {
    me->xruns_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a count
    if (me->hooks_.news) me->hooks_.news(me->hooks_.news_user);
  }
  static void shutdown_now(client* me) noexcept {
    me->lost_.store(true, std::memory_order_release);  // release: before the news wakes anyone
    if (me->hooks_.news) me->hooks_.news(me->hooks_.news_user);
  }

  jack_client_t* c_ = nullptr;
  std::string name_;
  client_hooks hooks_;
  std::atomic<bool> lost_{false};
  std::atomic<std::uint64_t> xruns_{0};
};

/// steady_clock minus JACK's clock, in microseconds, now. JACK's clock (jack_get_time, the
/// cycle times) is CLOCK_MONOTONIC_RAW on Linux with jack2 1.9.21, which NTP does not slew, while
/// steady_clock is CLOCK_MONOTONIC: they differ by an offset that moves by up to 0.5 us per ms.
/// Read once a cycle on the process thread (two vDSO clock reads; realtime-safe): the reads are
/// retried when something came between them.
inline std::int64_t steady_minus_jack_usecs() noexcept {
  std::int64_t best = 0, best_gap = -1;
  for (int i = 0; i < 3; ++i) {
    const auto j1 = std::int64_t(jack_get_time());
    const auto s =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count();
    const auto j2 = std::int64_t(jack_get_time());
    const auto gap = j2 - j1;
    if (best_gap < 0 || gap < best_gap) {
      best_gap = gap;
      best = s - (j1 + j2) / 2;
    }
    if (gap <= 5) break;
  }
  return best;
}

/// The cycle the process callback runs, on steady_clock (see steady_minus_jack_usecs).
inline cycle current_cycle(jack_client_t* c, jack_nframes_t nframes, frame_widener& widen) noexcept {
  jack_nframes_t frames = 0;
  jack_time_t now_us = 0, next_us = 0;
  float period_us = 0;
  if (jack_get_cycle_times(c, &frames, &now_us, &next_us, &period_us) != 0) {
    frames = jack_last_frame_time(c);
    now_us = jack_frames_to_time(c, frames);
    next_us = jack_frames_to_time(c, frames + nframes);
  }
  const auto offset = steady_minus_jack_usecs();
  return cycle{widen(frames), nframes, std::int64_t(now_us) + offset, std::int64_t(next_us) + offset};
}

/// The MIDI ports of the server: `sources` (JACK outputs, what an input reads) or destinations.
inline std::vector<std::string> list_ports(jack_client_t* c, bool sources) {
  std::vector<std::string> names;
  const char** ports = jack_get_ports(c, nullptr, JACK_DEFAULT_MIDI_TYPE, sources ? JackPortIsOutput : JackPortIsInput);
  if (!ports) return names;
  for (const char** p = ports; *p; ++p) names.emplace_back(*p);
  jack_free(ports);
  return names;
}

/// As list_ports, through a client of its own opened for the call. Throws std::runtime_error.
inline std::vector<std::string> list_ports(bool sources, const std::string& client_name = "tactus-probe") {
  client c(client_name);
  return list_ports(c.get(), sources);
}

}  // namespace tactus::midi::jack
