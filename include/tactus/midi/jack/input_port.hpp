// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/jack/client.hpp>
#include <tactus/midi/jack/cycle.hpp>

#include <jack/jack.h>
#include <jack/midiport.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

// The native JACK input port behind midi::input (api::jack). In each process cycle it reads the
// port's events and hands each one on with its frame (the cycle's first frame plus the event's
// offset) and the time of that frame (jack/cycle.hpp), not the time the callback ran. It also
// counts what JACK tells and RtMidi's JACK path cannot:
//
// - repeated(): events of a repeated cycle (JACK2 runs a late client's cycle again, with the
//   same first frame and the same events), dropped;
// - lost_in_backend(): jack_midi_get_lost_event_count of the port's buffer, the events JACK
//   lost before our callback (a sender's buffer full: "JackMidiBuffer::ReserveEvent ... not
//   enough room");
// - xruns(), server_lost() (jack/client.hpp).
//
// Each of these calls the owner's `news` hook (realtime-safe: midi::input writes its eventfd).
// Internal to the MIDI layer: users open midi::input.

#if defined(__SANITIZE_THREAD__)
// ThreadSanitizer's dynamic annotations (libtsan exports them): see read_shared() below.
extern "C" void AnnotateIgnoreReadsBegin(const char* file, int line);
extern "C" void AnnotateIgnoreReadsEnd(const char* file, int line);
#endif

namespace tactus::midi::jack {

/// Copies `n` bytes of a port buffer in the JACK server's shared memory. The sending client wrote
/// them in its own cycle, ordered before ours by jackd's graph activation (futexes in shared
/// memory), which ThreadSanitizer cannot see: under TSan these reads alone are not checked.
inline void read_shared(std::uint8_t* to, const std::uint8_t* from, std::size_t n) noexcept {
#if defined(__SANITIZE_THREAD__)
  AnnotateIgnoreReadsBegin(__FILE__, __LINE__);
#endif
  for (std::size_t i = 0; i < n; ++i) to[i] = from[i];
#if defined(__SANITIZE_THREAD__)
  AnnotateIgnoreReadsEnd(__FILE__, __LINE__);
#endif
}

/// Which messages the port passes on (as RtMidi's ignoreTypes, inverted).
struct input_filter {
  bool sysex = true;
  bool timing = true;  // clock (0xF8) and MTC quarter frame (0xF1)
  bool active_sensing = false;
  std::size_t max_bytes = 64 * 1024;  // the longest message passed on (input_options::max_sysex_bytes)
};

class input_port {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  /// One event, on JACK's process thread: its frame, the time of that frame, the seconds since
  /// the previous event of this port (0 for the first), its bytes. Realtime-safe, noexcept.
  using event_fn = void (*)(void* user, std::int64_t frame, time_point t, double delta,
                            std::span<const std::uint8_t> bytes) noexcept;
  using news_fn = void (*)(void* user) noexcept;

  /// Opens a client `client_name` with one MIDI input port `port_name` and activates it.
  /// Throws std::runtime_error.
  input_port(const std::string& client_name, const std::string& port_name, input_filter filter, event_fn on_event,
             news_fn news, void* user)
      : client_(client_name),
        filter_(filter),
        on_event_(on_event),
        news_(news),
        user_(user),
        scratch_(std::max<std::size_t>(filter.max_bytes, 3)) {
    port_ = client_.register_midi_port(port_name, true);
    client_.set_hooks({&input_port::process, this, news, user});
    client_.activate();
  }

  input_port(const input_port&) = delete;
  input_port& operator=(const input_port&) = delete;
  ~input_port() { close(); }

  std::string name() const { return port_ ? jack_port_name(port_) : std::string(); }
  /// Connects `source` (a full port name) to our port.
  void connect_from(const std::string& source) { client_.connect(source, name()); }
  /// The MIDI sources of the server, through our client.
  std::vector<std::string> sources() const { return list_ports(client_.get(), true); }

  /// Closes the client: no callback runs after it returns. Idempotent.
  void close() noexcept {
    client_.close();
    port_ = nullptr;
  }

  // Any thread. relaxed: counts.
  std::uint64_t repeated() const noexcept { return repeated_.load(std::memory_order_relaxed); }
  std::uint64_t lost_in_backend() const noexcept { return lost_.load(std::memory_order_relaxed); }
  std::uint64_t xruns() const noexcept { return client_.xruns(); }
  bool server_lost() const noexcept { return client_.server_lost(); }

 private:
  bool passes(std::span<const std::uint8_t> b) const noexcept {
    if (b.empty()) return false;
    if (b[0] == 0xF0) return filter_.sysex;
    if (b[0] == 0xF8 || b[0] == 0xF1) return filter_.timing;
    if (b[0] == 0xFE) return filter_.active_sensing;
    return true;
  }

  static void add(std::atomic<std::uint64_t>& c, std::uint64_t n) noexcept {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);  // one writer: this thread
  }

  // JACK's process thread.
  static void process(jack_nframes_t nframes, void* user) noexcept {
    auto* self = static_cast<input_port*>(user);
    jack_client_t* c = self->client_.get();
    void* buf = jack_port_get_buffer(self->port_, nframes);
    const auto n = jack_midi_get_event_count(buf);
    const cycle cy = current_cycle(c, nframes, self->widen_);
    if (self->repeat_.repeated(cy.start_frame)) {
      if (n) {
        add(self->repeated_, n);
        self->news_(self->user_);
      }
      return;
    }
    if (const auto lost = jack_midi_get_lost_event_count(buf)) {
      add(self->lost_, lost);
      self->news_(self->user_);
    }
    for (std::uint32_t i = 0; i < n; ++i) {
      jack_midi_event_t ev;
      if (jack_midi_event_get(&ev, buf, i) != 0) continue;
      // Copied out of shared memory into our preallocated buffer; a message longer than the
      // input takes (input_options::max_sysex_bytes) is handed on unread: the hand-off counts it
      // as too long from its size alone.
      std::span<const std::uint8_t> bytes(ev.buffer, ev.size);
      if (ev.size == 0) continue;
      read_shared(self->scratch_.data(), ev.buffer, std::min(ev.size, self->scratch_.size()));
      if (ev.size <= self->scratch_.size()) bytes = {self->scratch_.data(), ev.size};
      if (!self->passes(std::span<const std::uint8_t>(self->scratch_.data(), 1))) continue;
      const auto t = cy.time_of_offset(ev.time);
      const double delta = self->have_last_ ? std::chrono::duration<double>(t - self->last_).count() : 0.0;
      self->have_last_ = true;
      self->last_ = t;
      self->on_event_(self->user_, cy.start_frame + ev.time, t, delta, bytes);
    }
  }

  client client_;
  jack_port_t* port_ = nullptr;
  input_filter filter_;
  event_fn on_event_;
  news_fn news_;
  void* user_;
  // The process thread's.
  std::vector<std::uint8_t> scratch_;  // input_filter::max_bytes, preallocated
  frame_widener widen_;
  repeat_detector repeat_;
  bool have_last_ = false;
  time_point last_{};
  std::atomic<std::uint64_t> repeated_{0};
  std::atomic<std::uint64_t> lost_{0};
};

}  // namespace tactus::midi::jack
