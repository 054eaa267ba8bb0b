// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <jack/jack.h>
#include <jack/midiport.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

// Benchmark support: the floor of a scheduled MIDI output, a plain libjack client that writes a
// list of events at their exact frames and nothing else (no queue from another thread, no clock
// conversion). The list is given before start(); the process callback writes each event whose
// frame (start frame + its offset) falls in the cycle at its offset there. What the capture sees
// from it is the best any JACK sender can do.
//
//   tactus_bench::jack_floor floor("floor");
//   floor.connect("capture:in");
//   floor.start({{0, {0xF8}}, {1000, {0xF8}}});   // frames from the next cycle's first frame
//   while (!floor.done()) sleep...;

namespace tactus_bench {

class jack_floor {
 public:
  struct event {
    std::int64_t offset;  // frames after the start frame
    std::array<std::uint8_t, 3> bytes;
    std::uint8_t size = 1;
  };

  explicit jack_floor(const std::string& name) {
    client_ = jack_client_open(name.c_str(), JackNoStartServer, nullptr);
    if (!client_) throw std::runtime_error("jack_floor: no JACK server");
    port_ = jack_port_register(client_, "out", JACK_DEFAULT_MIDI_TYPE, JackPortIsOutput, 0);
    if (!port_) throw std::runtime_error("jack_floor: cannot register a port");
    jack_set_process_callback(client_, &jack_floor::process, this);
    if (jack_activate(client_) != 0) throw std::runtime_error("jack_floor: cannot activate");
  }
  jack_floor(const jack_floor&) = delete;
  jack_floor& operator=(const jack_floor&) = delete;
  ~jack_floor() {
    jack_deactivate(client_);
    jack_client_close(client_);
  }

  void connect(const std::string& to) {
    const int r = jack_connect(client_, jack_port_name(port_), to.c_str());
    if (r != 0 && r != EEXIST) throw std::runtime_error("jack_floor: cannot connect to " + to);
  }
  std::uint32_t sample_rate() const { return jack_get_sample_rate(client_); }

  /// Plays `events` (offsets ascending) from the first frame of the next cycle. Not while playing.
  void start(std::vector<event> events) {
    if (!done()) throw std::logic_error("jack_floor: start() while playing");
    events_ = std::move(events);
    next_ = 0;
    // release: events_ is complete before the realtime thread sees state 1.
    state_.store(1, std::memory_order_release);
  }
  /// True once every event is written (or before start()).
  bool done() const { return state_.load(std::memory_order_acquire) == 0; }

 private:
  static int process(jack_nframes_t n, void* arg) {
    auto& self = *static_cast<jack_floor*>(arg);
    void* buf = jack_port_get_buffer(self.port_, n);
    jack_midi_clear_buffer(buf);
    const int s = self.state_.load(std::memory_order_acquire);  // acquire: events_ is ready
    if (s == 0) return 0;
    const std::int64_t cycle = jack_last_frame_time(self.client_);
    if (s == 1) {
      self.start_ = cycle;
      self.state_.store(2, std::memory_order_relaxed);
    }
    while (self.next_ < self.events_.size()) {
      const event& e = self.events_[self.next_];
      const std::int64_t at = self.start_ + e.offset - cycle;
      if (at >= std::int64_t(n)) break;
      if (at >= 0) jack_midi_event_write(buf, jack_nframes_t(at), e.bytes.data(), e.size);
      ++self.next_;
    }
    // release: we are done with events_ before start() may replace it.
    if (self.next_ == self.events_.size()) self.state_.store(0, std::memory_order_release);
    return 0;
  }

  jack_client_t* client_ = nullptr;
  jack_port_t* port_ = nullptr;
  std::vector<event> events_;
  std::size_t next_ = 0;
  std::int64_t start_ = 0;
  std::atomic<int> state_{0};  // 0 idle, 1 start at the next cycle, 2 playing
};

}  // namespace tactus_bench
