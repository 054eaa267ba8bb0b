// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/io_error.hpp>
#include <tactus/midi/jack/client.hpp>
#include <tactus/midi/jack/cycle.hpp>
#include <tactus/midi/jack/schedule.hpp>
#include <tactus/midi/message.hpp>

#include <jack/jack.h>
#include <jack/midiport.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>
#include <thread>

// The native JACK output port behind midi::output (api::jack): the executor pushes messages,
// to send at once or at a time, into a lock-free ring (jack/schedule.hpp); JACK's process thread
// moves them into its schedule and writes each cycle's messages at their frames. Neither side
// blocks, locks or allocates on the way. What is in flight is bounded by the capacity: a push
// beyond it throws io_errc::queue_overflow (counted in dropped()), never waits.
// Internal to the MIDI layer: users open midi::output.

namespace tactus::midi::jack {

class output_port {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  /// Opens a client `client_name` with one MIDI output port `port_name` and activates it.
  /// Throws std::runtime_error (no server, a port that cannot be registered).
  output_port(const std::string& client_name, const std::string& port_name, std::size_t capacity)
      : client_(client_name), ring_(capacity + 64), sched_(capacity) {
    port_ = client_.register_midi_port(port_name, false);
    client_.set_hooks({&output_port::process, this, nullptr, nullptr});
    client_.activate();
  }

  output_port(const output_port&) = delete;
  output_port& operator=(const output_port&) = delete;
  ~output_port() { close(); }

  /// Our port's full name, "client:port".
  std::string name() const { return port_ ? jack_port_name(port_) : std::string(); }
  /// Connects our port to `destination` (a full port name).
  void connect_to(const std::string& destination) { client_.connect(name(), destination); }

  /// Executor: queues `m` for the process thread, to send at once (`at` empty: at the frame of
  /// this moment, or frame 0 when its cycle is written already) or at `*at`.
  /// Throws std::system_error: io_errc::server_lost, io_errc::queue_overflow (counted in
  /// dropped()), io_errc::sysex_too_long (longer than max_event_bytes).
  void push(const message& m, std::optional<time_point> at) {
    check_alive();
    const auto b = m.bytes();
    if (b.size() > max_event_bytes)
      throw std::system_error(make_error_code(io_errc::sysex_too_long),
                              "tactus::midi: jack output: a message of " + std::to_string(b.size()) +
                                  " bytes (at most " + std::to_string(max_event_bytes) + ")");
    if (pushed_ - sched_.retired() >= sched_.capacity()) overflow();
    event_.what = at ? rt_event::kind::at : rt_event::kind::now;
    event_.time_ns = cycle::to_nanos(at ? *at : std::chrono::steady_clock::now());
    event_.seq = ++seq_;
    event_.size = std::uint16_t(b.size());
    std::copy(b.begin(), b.end(), event_.bytes.begin());
    if (!ring_.try_push(event_)) overflow();
    ++pushed_;
  }

  /// Executor: sends the scheduled note-offs at once and drops the scheduled note-ons and what is
  /// scheduled after `keep` from now (see rt_schedule). Best effort: nothing happens once the
  /// server is gone.
  void cancel_scheduled(std::chrono::nanoseconds keep = {}) noexcept {
    if (client_.server_lost()) return;
    rt_event e;
    e.what = rt_event::kind::cancel;
    e.time_ns = cycle::to_nanos(std::chrono::steady_clock::now());
    e.keep_until = e.time_ns + keep.count();
    (void)ring_.try_push(e);  // the ring keeps room for cancels beyond the capacity
  }

  /// Executor: waits (sleeping) until every message pushed is written and two more cycles ran,
  /// at most `max`; returns at once when the server is gone.
  void drain(std::chrono::milliseconds max) const {
    const auto end = std::chrono::steady_clock::now() + max + min_drain();
    auto waiting = [&] { return !client_.server_lost() && std::chrono::steady_clock::now() < end; };
    while (waiting() && sched_.retired() < pushed_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const auto c = cycles_.load(std::memory_order_acquire);
    while (waiting() && cycles_.load(std::memory_order_acquire) < c + 2)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  /// Closes the client (no process callback runs afterwards). Idempotent.
  void close() noexcept {
    client_.close();
    port_ = nullptr;
  }

  bool server_lost() const noexcept { return client_.server_lost(); }
  std::uint64_t late() const noexcept { return sched_.late(); }
  std::uint64_t dropped() const noexcept { return sched_.dropped() + refused_.load(std::memory_order_relaxed); }
  std::uint64_t xruns() const noexcept { return client_.xruns(); }
  jack_client_t* native_client() const noexcept { return client_.get(); }

 private:
  void check_alive() const {
    if (client_.server_lost())
      throw std::system_error(make_error_code(io_errc::server_lost), "tactus::midi: jack output " + client_.name());
  }
  [[noreturn]] void overflow() {
    refused_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a count
    throw std::system_error(make_error_code(io_errc::queue_overflow),
                            "tactus::midi: jack output: " + std::to_string(sched_.capacity()) +
                                " messages in flight (output_options::queue_capacity)");
  }

  // Four cycles and a little: what a receiver needs to see the last cycle we wrote.
  std::chrono::milliseconds min_drain() const noexcept {
    const auto c = client_.get();
    if (!c || client_.server_lost()) return std::chrono::milliseconds(0);
    const double rate = jack_get_sample_rate(c), frames = jack_get_buffer_size(c);
    return std::chrono::milliseconds(rate > 0 ? long(4000.0 * frames / rate) + 5 : 50);
  }

  // JACK's process thread.
  static void process(jack_nframes_t nframes, void* user) noexcept {
    auto* self = static_cast<output_port*>(user);
    jack_client_t* c = self->client_.get();
    void* buf = jack_port_get_buffer(self->port_, nframes);
    jack_midi_clear_buffer(buf);
    const cycle cy = current_cycle(c, nframes, self->widen_);
    while (self->ring_.try_pop(self->incoming_)) self->sched_.take(self->incoming_);
    self->sched_.run_cycle(cy, [buf](std::uint32_t offset, std::span<const std::uint8_t> b) {
      return jack_midi_event_write(buf, offset, b.data(), b.size()) == 0;
    });
    self->cycles_.fetch_add(1, std::memory_order_release);  // release: drain() sees the cycle's writes done
  }

  client client_;
  jack_port_t* port_ = nullptr;
  spsc_ring<rt_event> ring_;
  rt_schedule sched_;
  // The process thread's.
  rt_event incoming_;
  frame_widener widen_;
  std::atomic<std::uint64_t> cycles_{0};
  // The executor's.
  rt_event event_;
  std::uint64_t seq_ = 0;
  std::uint64_t pushed_ = 0;
  std::atomic<std::uint64_t> refused_{0};  // written here, read by any thread
};

}  // namespace tactus::midi::jack
