// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/message.hpp>

#include <jack/jack.h>
#include <jack/midiport.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

// Test and benchmark support: a frame-stamped MIDI capture, an independent JACK client written on
// plain libjack (none of tactus's code paths), with one MIDI input port. Its process callback
// stamps each event with its absolute frame, jack_last_frame_time() + the event's offset in the
// cycle, and copies its bytes into a ring preallocated at construction: no allocation, no lock
// and no system call on the realtime thread. What does not fit is counted in overflow(), never
// lost silently. take() hands the events over on any one other thread.
//
//   tactus_tests::jack_capture cap("capture");           // client "capture", port "capture:in"
//   cap.connect("tactus-out:out");                       // or let the sender connect to cap.port_name()
//   ... play ...
//   for (const auto& e : cap.take()) use(e.frame, e.msg());
//
// Each event also carries its time, on JACK's clock and on the steady clock (see
// captured_event). Frames are 64-bit: the 32-bit JACK frame counter's wrap-around (after 24.8 h at 48 kHz) is
// unfolded. A cycle that JACK runs twice (the same jack_last_frame_time) is dropped and counted in
// repeated_cycles(), so that a copy never shows as an event. With jack_link.hpp:
//
//   auto rx = tactus_tests::as_messages(cap);            // take() -> std::vector<message>
//   tactus_tests::link(out, rx);
//
// Used by the JACK tests of the `jack` branch and by bench/clock_master_jitter, clock_follow --jack
// and drum_grid (which add tests/support to their include path). Needs libjack (pkg-config jack).

namespace tactus_tests {

/// One captured MIDI event.
struct captured_event {
  /// Absolute JACK frame of the event: jack_last_frame_time() of its cycle + its offset.
  std::int64_t frame = 0;
  /// The event's time on JACK's clock (jack_get_time(), microseconds): its cycle's start time plus
  /// its offset at the cycle's rate (jack_get_cycle_times). Unlike frames, which jump after an
  /// xrun, these follow the wall clock.
  std::int64_t usecs = 0;
  /// The same time on std::chrono::steady_clock, in microseconds. JACK2's clock on Linux is
  /// CLOCK_MONOTONIC_RAW, not steady_clock's CLOCK_MONOTONIC: they part by NTP's slewing (tenths
  /// of a second after hours of uptime, a few ppm more every second), so the offset between the
  /// two is read in the very cycle of the event.
  std::int64_t steady_usecs = 0;
  /// The event's size in bytes (more than bytes.size() for a long sysex, which is truncated).
  std::uint32_t size = 0;
  std::array<std::uint8_t, 8> bytes{};

  /// The event as a message (std::nullopt for a truncated sysex or bytes that are no message).
  std::optional<tactus::midi::message> msg() const {
    if (size > bytes.size()) return std::nullopt;
    return tactus::midi::message::from_bytes(std::span<const std::uint8_t>(bytes.data(), size));
  }
  std::uint8_t status() const { return size ? bytes[0] : 0; }
  /// The event's time on the steady clock.
  std::chrono::steady_clock::time_point time() const {
    return std::chrono::steady_clock::time_point(std::chrono::microseconds(steady_usecs));
  }
};

struct jack_capture_options {
  /// Events the ring holds between two take() calls; more are counted in overflow().
  std::size_t capacity = 1 << 16;
  /// The input port's short name.
  std::string port = "in";
};

class jack_capture {
 public:
  using options = jack_capture_options;

  /// Opens client `client_name` on the default server (JACK_DEFAULT_SERVER), never starting one,
  /// registers the port and activates. Throws std::runtime_error when there is no server.
  explicit jack_capture(const std::string& client_name, options o = {}) : ring_(std::max<std::size_t>(o.capacity, 1)) {
    jack_status_t status{};
    client_ = jack_client_open(client_name.c_str(), JackNoStartServer, &status);
    if (!client_)
      throw std::runtime_error("jack_capture: cannot open JACK client '" + client_name + "' (no JACK server? status " +
                               std::to_string(int(status)) + ")");
    port_ = jack_port_register(client_, o.port.c_str(), JACK_DEFAULT_MIDI_TYPE, JackPortIsInput, 0);
    if (!port_) {
      jack_client_close(client_);
      throw std::runtime_error("jack_capture: cannot register port '" + o.port + "'");
    }
    jack_set_process_callback(client_, &jack_capture::process, this);
    jack_set_xrun_callback(client_, &jack_capture::on_xrun, this);
    jack_on_shutdown(client_, &jack_capture::on_shutdown, this);
    if (jack_activate(client_) != 0) {
      jack_client_close(client_);
      throw std::runtime_error("jack_capture: cannot activate the JACK client");
    }
  }
  jack_capture(const jack_capture&) = delete;
  jack_capture& operator=(const jack_capture&) = delete;
  ~jack_capture() {
    if (!server_lost()) jack_deactivate(client_);
    jack_client_close(client_);
  }

  /// The full name of the input port ("client:in"), for a sender to connect to.
  std::string port_name() const { return jack_port_name(port_); }

  /// Connects the output port `source` ("client:port") to ours. Throws std::runtime_error.
  void connect(const std::string& source) {
    const int r = jack_connect(client_, source.c_str(), jack_port_name(port_));
    if (r != 0 && r != EEXIST) throw std::runtime_error("jack_capture: cannot connect '" + source + "' to us");
  }

  /// The events captured since the previous call, in order. Thread: any one thread at a time.
  std::vector<captured_event> take() {
    // acquire: the events before head_ were written before it was published.
    const std::uint64_t head = head_.load(std::memory_order_acquire);
    const std::uint64_t tail = tail_.load(std::memory_order_relaxed);  // only we write it
    std::vector<captured_event> out;
    out.reserve(std::size_t(head - tail));
    for (std::uint64_t i = tail; i != head; ++i) out.push_back(ring_[std::size_t(i % ring_.size())]);
    // release: the realtime thread may reuse the slots only after we have copied them.
    tail_.store(head, std::memory_order_release);
    return out;
  }

  /// Lets a few more cycles (4) reach us, so that what was sent before the call is in, then
  /// take()s. Waits at most `patience` (a stalled server). Thread: as take().
  std::vector<captured_event> drain(std::chrono::steady_clock::duration patience = std::chrono::seconds(2)) {
    const auto seen = cycles();
    const auto deadline = std::chrono::steady_clock::now() + patience;
    while (cycles() < seen + 4 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return take();
  }

  /// Events that did not fit in the ring (take() not called often enough).
  std::uint64_t overflow() const { return overflow_.load(std::memory_order_relaxed); }
  /// Events JACK itself lost before our callback saw them (jack_midi_get_lost_event_count).
  std::uint64_t lost_in_backend() const { return lost_.load(std::memory_order_relaxed); }
  /// Cycles seen twice (the same jack_last_frame_time), whose events were dropped.
  std::uint64_t repeated_cycles() const { return repeated_.load(std::memory_order_relaxed); }
  /// Xruns the server reported while we were active.
  std::uint64_t xruns() const { return xruns_.load(std::memory_order_relaxed); }
  /// Cycles our process callback has run.
  std::uint64_t cycles() const { return cycles_.load(std::memory_order_relaxed); }
  /// True once the server has gone away.
  bool server_lost() const { return lost_server_.load(std::memory_order_acquire); }

  /// Frames per second of the server.
  std::uint32_t sample_rate() const { return jack_get_sample_rate(client_); }
  /// Frames per cycle of the server.
  std::uint32_t period() const { return jack_get_buffer_size(client_); }
  /// The server's current frame count (jack_frame_time), unfolded like the events' frames as long
  /// as it is within 2^31 frames of the last cycle seen.
  std::int64_t frame_now() const { return unfold(jack_frame_time(client_)); }
  /// The time of `frame` on the steady clock: jack_frames_to_time, moved from JACK's clock to the
  /// steady clock by their offset now (see captured_event::steady_usecs). Not from the realtime
  /// thread.
  std::chrono::steady_clock::time_point time_of(std::int64_t frame) const {
    const jack_time_t us = jack_frames_to_time(client_, jack_nframes_t(std::uint64_t(frame)));
    const std::int64_t to_steady = steady_usecs_now() - std::int64_t(jack_get_time());
    return std::chrono::steady_clock::time_point(std::chrono::microseconds(std::int64_t(us) + to_steady));
  }
  /// The raw client, for what this class does not wrap.
  jack_client_t* client() const { return client_; }

 private:
  static std::int64_t steady_usecs_now() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  std::int64_t unfold(jack_nframes_t f) const {
    const std::int64_t base = last_cycle_.load(std::memory_order_acquire);
    if (base < 0) return f;
    // The frame nearest to the last cycle start whose low 32 bits are f.
    const std::int64_t d = std::int64_t(std::int32_t(std::uint32_t(f) - std::uint32_t(base)));
    return base + d;
  }

  static int process(jack_nframes_t nframes, void* arg) {
    auto& self = *static_cast<jack_capture*>(arg);
    self.cycles_.fetch_add(1, std::memory_order_relaxed);
    void* buffer = jack_port_get_buffer(self.port_, nframes);
    const jack_nframes_t low = jack_last_frame_time(self.client_);
    // Unfold the 32-bit counter: only this thread writes last_cycle_.
    const std::int64_t prev = self.last_cycle_.load(std::memory_order_relaxed);
    const std::int64_t start =
        prev < 0 ? std::int64_t(low) : prev + std::int64_t(std::int32_t(std::uint32_t(low) - std::uint32_t(prev)));
    if (prev >= 0 && start == prev) {  // the same cycle again: its events are copies
      self.repeated_.fetch_add(1, std::memory_order_relaxed);
      return 0;
    }
    // release: frame_now()'s reader sees a consistent base (a plain value, no other data).
    self.last_cycle_.store(start, std::memory_order_release);
    if (const auto lost = jack_midi_get_lost_event_count(buffer))
      self.lost_.store(self.lost_.load(std::memory_order_relaxed) + lost, std::memory_order_relaxed);
    const std::uint32_t n = jack_midi_get_event_count(buffer);
    jack_nframes_t cycle_frames = 0;
    jack_time_t cycle_usecs = 0, next_usecs = 0;
    float period_usecs = 0;
    const bool timed = jack_get_cycle_times(self.client_, &cycle_frames, &cycle_usecs, &next_usecs, &period_usecs) == 0;
    const double usecs_per_frame = timed && nframes ? double(next_usecs - cycle_usecs) / nframes : 0.0;
    // steady_clock - JACK's clock, now (two vDSO clock reads, no system call).
    const std::int64_t to_steady = steady_usecs_now() - std::int64_t(jack_get_time());
    std::uint64_t head = self.head_.load(std::memory_order_relaxed);  // only we write it
    // acquire: take() has finished copying the slots before tail_.
    const std::uint64_t tail = self.tail_.load(std::memory_order_acquire);
    for (std::uint32_t i = 0; i < n; ++i) {
      jack_midi_event_t ev;
      if (jack_midi_event_get(&ev, buffer, i) != 0) continue;
      if (head - tail >= self.ring_.size()) {
        self.overflow_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      captured_event& e = self.ring_[std::size_t(head % self.ring_.size())];
      e.frame = start + std::int64_t(ev.time);
      e.usecs = std::int64_t(cycle_usecs) + std::llround(double(ev.time) * usecs_per_frame);
      e.steady_usecs = e.usecs + to_steady;
      e.size = std::uint32_t(ev.size);
      std::memcpy(e.bytes.data(), ev.buffer, std::min(ev.size, e.bytes.size()));
      ++head;
    }
    // release: the slots written above are complete before take() sees the new head.
    self.head_.store(head, std::memory_order_release);
    return 0;
  }
  static int on_xrun(void* arg) {
    static_cast<jack_capture*>(arg)->xruns_.fetch_add(1, std::memory_order_relaxed);
    return 0;
  }
  static void on_shutdown(void* arg) {
    // release: nothing else to publish; the flag alone matters.
    static_cast<jack_capture*>(arg)->lost_server_.store(true, std::memory_order_release);
  }

  jack_client_t* client_ = nullptr;
  jack_port_t* port_ = nullptr;
  std::vector<captured_event> ring_;
  std::atomic<std::uint64_t> head_{0}, tail_{0};
  std::atomic<std::uint64_t> overflow_{0}, lost_{0}, repeated_{0}, xruns_{0}, cycles_{0};
  std::atomic<std::int64_t> last_cycle_{-1};
  std::atomic<bool> lost_server_{false};
};

/// A view of `cap` whose take() returns the messages alone, for tactus_tests::link
/// (jack_link.hpp). Events that are no message are left out.
struct capture_messages {
  jack_capture& cap;
  std::vector<tactus::midi::message> take() {
    std::vector<tactus::midi::message> out;
    for (const auto& e : cap.take())
      if (auto m = e.msg()) out.push_back(std::move(*m));
    return out;
  }
};
inline capture_messages as_messages(jack_capture& cap) { return {cap}; }

}  // namespace tactus_tests
