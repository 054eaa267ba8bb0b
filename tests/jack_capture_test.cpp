// SPDX-License-Identifier: BSL-1.0
// The frame-stamped capture client (support/jack_capture.hpp) on the JACK server of the `jack`
// CTest fixture, fed by a raw libjack sender in this test that writes each event at a chosen
// offset of its cycle and notes the absolute frame it wrote it at. The capture must see exactly
// those frames (a client fed in the same cycle), in order, and count what did not fit.
#include "support/jack_capture.hpp"

#include "support/catch.hpp"
#include "support/jack_period.hpp"
#include <jack/jack.h>
#include <jack/midiport.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using tactus_tests::captured_event;
using tactus_tests::jack_capture;

namespace {

// A plain libjack MIDI sender: probes (Song Select at offset 0, each cycle) until told to stop,
// then `count` Note Ons, one a cycle, note k at offset (37 k + 5) mod the period, its frame noted.
class raw_sender {
 public:
  static constexpr int max_events = 64;

  explicit raw_sender(const char* name) {
    client_ = jack_client_open(name, JackNoStartServer, nullptr);
    if (!client_) throw std::runtime_error("raw_sender: no JACK server");
    port_ = jack_port_register(client_, "out", JACK_DEFAULT_MIDI_TYPE, JackPortIsOutput, 0);
    jack_set_process_callback(client_, &raw_sender::process, this);
    jack_activate(client_);
  }
  raw_sender(const raw_sender&) = delete;
  raw_sender& operator=(const raw_sender&) = delete;
  ~raw_sender() {
    jack_deactivate(client_);
    jack_client_close(client_);
  }
  std::string port_name() const { return jack_port_name(port_); }
  void probe(bool on) { probing_.store(on, std::memory_order_relaxed); }
  void send(int count) { to_send_.store(count, std::memory_order_release); }
  int sent() const { return sent_.load(std::memory_order_acquire); }
  // steady_clock::now() when the last note was written (its cycle).
  clock_type::time_point sent_at() const {
    return clock_type::time_point(clock_type::duration(sent_at_.load(std::memory_order_acquire)));
  }
  // Valid for the first sent() events.
  std::int64_t frame(int k) const { return frames_[std::size_t(k)]; }
  static int offset(int k, std::uint32_t period) { return int((37u * std::uint32_t(k) + 5u) % period); }

 private:
  static int process(jack_nframes_t n, void* arg) {
    auto& self = *static_cast<raw_sender*>(arg);
    void* buf = jack_port_get_buffer(self.port_, n);
    jack_midi_clear_buffer(buf);
    if (self.probing_.load(std::memory_order_relaxed)) {
      const jack_midi_data_t probe[2] = {0xF3, 0};
      jack_midi_event_write(buf, 0, probe, 2);
      return 0;
    }
    const int k = self.sent_.load(std::memory_order_relaxed);  // only we write it
    if (k < std::min(self.to_send_.load(std::memory_order_acquire), max_events)) {
      const int at = offset(k, n);
      const jack_midi_data_t note[3] = {0x90, jack_midi_data_t(k), 100};
      jack_midi_event_write(buf, jack_nframes_t(at), note, 3);
      self.frames_[std::size_t(k)] = std::int64_t(jack_last_frame_time(self.client_)) + at;
      self.sent_at_.store(clock_type::now().time_since_epoch().count(), std::memory_order_relaxed);
      self.sent_.store(k + 1, std::memory_order_release);  // release: frames_[k] is written
    }
    return 0;
  }

  jack_client_t* client_ = nullptr;
  jack_port_t* port_ = nullptr;
  std::atomic<bool> probing_{true};
  std::atomic<int> to_send_{0};
  std::atomic<int> sent_{0};
  std::atomic<clock_type::rep> sent_at_{0};
  std::array<std::int64_t, max_events> frames_{};
};

// Waits until the capture has heard a probe (the connection carries), stops the probes and lets
// the last ones arrive, then empties the capture.
void link(raw_sender& tx, jack_capture& cap) {
  const auto deadline = clock_type::now() + 10s;
  while (cap.take().empty()) {
    if (clock_type::now() > deadline) throw std::runtime_error("jack_capture_test: no probe arrived within 10 s");
    std::this_thread::sleep_for(1ms);
  }
  tx.probe(false);
  const auto cycles = cap.cycles();
  while (cap.cycles() < cycles + 3 && clock_type::now() < deadline) std::this_thread::sleep_for(1ms);
  cap.take();
}

std::vector<captured_event> wait_for(jack_capture& cap, raw_sender& tx, int n) {
  const auto deadline = clock_type::now() + 10s;
  while (tx.sent() < n && clock_type::now() < deadline) std::this_thread::sleep_for(1ms);
  const auto cycles = cap.cycles();  // the sender's last cycle has reached the capture
  while (cap.cycles() < cycles + 2 && clock_type::now() < deadline) std::this_thread::sleep_for(1ms);
  return cap.take();
}

}  // namespace

TEST_CASE("each event stamped with the frame it was written at, in order") {
  jack_capture cap("jcap-capture");
  raw_sender tx("jcap-sender");
  cap.connect(tx.port_name());
  link(tx, cap);
  CHECK(cap.sample_rate() == 48000);
  CHECK(cap.period() == std::uint32_t(tactus_tests::jack_period_frames()));

  constexpr int n = 32;
  tx.send(n);
  const auto got = wait_for(cap, tx, n);
  REQUIRE(tx.sent() == n);
  REQUIRE(got.size() == std::size_t(n));
  for (int k = 0; k < n; ++k) {
    INFO("note " << k);
    const auto m = got[std::size_t(k)].msg();
    REQUIRE(m);
    CHECK(m->data1() == k);
    CHECK(got[std::size_t(k)].frame == tx.frame(k));
    CHECK(got[std::size_t(k)].frame % cap.period() == std::uint32_t(raw_sender::offset(k, cap.period())));
  }
  CHECK(cap.overflow() == 0);
  CHECK(cap.repeated_cycles() == 0);
  // A frame converts to the steady clock's time (JACK's clock is CLOCK_MONOTONIC): near now.
  const auto t = cap.time_of(got.back().frame);
  CHECK(t < clock_type::now() + 1s);
  CHECK(t > clock_type::now() - 30s);
  // Each event's own time: a cycle later is a period later, give or take the clock's estimate.
  for (int k = 1; k < n; ++k) {
    const auto dt = got[std::size_t(k)].usecs - got[std::size_t(k - 1)].usecs;
    const auto df = got[std::size_t(k)].frame - got[std::size_t(k - 1)].frame;
    INFO("note " << k << ": " << df << " frames, " << dt << " us");
    CHECK(std::abs(double(dt) - double(df) * 1e6 / cap.sample_rate()) < 0.1 * double(df) * 1e6 / cap.sample_rate() + 2);
  }
  // On the steady clock, as the sender's own clock reading puts it.
  CHECK(std::abs(std::chrono::duration<double>(got.back().time() - t).count()) < 0.01);
  // within a cycle or two of the sender's reading of the steady clock in the cycle it wrote it
  // (JACK2's own clock, CLOCK_MONOTONIC_RAW, is apart from it by NTP's slewing: 0.14 s on a VM up 9 h)
  CHECK(std::abs(std::chrono::duration<double>(got.back().time() - tx.sent_at()).count()) < 0.05);
}

TEST_CASE("what does not fit the ring is counted in overflow, the first events kept") {
  jack_capture cap("jcap-small", {.capacity = 4});
  raw_sender tx("jcap-sender2");
  cap.connect(tx.port_name());
  link(tx, cap);
  const auto before = cap.overflow();  // probes too may have overflowed, under a sanitizer
  tx.send(10);
  const auto got = wait_for(cap, tx, 10);
  REQUIRE(tx.sent() == 10);
  REQUIRE(got.size() == 4);
  for (int k = 0; k < 4; ++k) CHECK(got[std::size_t(k)].frame == tx.frame(k));
  CHECK(cap.overflow() - before == 6);
}
