// SPDX-License-Identifier: BSL-1.0
// The native JACK backend on the `jack` fixture's server, where only a server shows it: input
// stamped with the frame each event was written at (a raw libjack sender in the test writes at
// known offsets of one cycle), send_at written at the frame where its time falls (a raw libjack
// capture records each event's frame), late messages counted, xruns counted. Frames are
// structural facts (where in the cycle a message sits), not timings of the loaded machine.
#include <tactus/midi/input.hpp>
#include <tactus/midi/jack/client.hpp>
#include <tactus/midi/output.hpp>

#include "support/catch.hpp"
#include "support/jack_link.hpp"
#include <asio/io_context.hpp>
#include <jack/jack.h>
#include <jack/midiport.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace tactus::midi;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

// A raw libjack client of the test with one MIDI port. Its process callback takes the mutex
// with try_lock (a test may; a realtime client may not block).
class raw_client {
 public:
  struct received {
    std::int64_t frame;
    std::uint32_t offset;
    jack::cycle cycle;
    message msg;
  };

  raw_client(const std::string& name, bool input) {
    jack_status_t status{};
    c_ = jack_client_open(name.c_str(), JackNoStartServer, &status);
    if (!c_) throw std::runtime_error("raw_client: no JACK server");
    p_ = jack_port_register(c_, input ? "in" : "out", JACK_DEFAULT_MIDI_TYPE,
                            input ? JackPortIsInput : JackPortIsOutput, 0);
    jack_set_process_callback(c_, &raw_client::process, this);
    jack_activate(c_);
  }
  ~raw_client() { jack_client_close(c_); }

  // Sender: one message at offset 0 of the next cycle (for tactus_tests::link).
  void send(const message& m) { write_in_one_cycle({{0u, m}}); }

  // Sender: these messages, all in the same cycle, at their offsets; returns that cycle.
  jack::cycle write_in_one_cycle(std::vector<std::pair<std::uint32_t, message>> w) {
    {
      std::lock_guard lock(mutex_);
      pending_ = std::move(w);
      written_ = false;
    }
    for (;;) {
      std::this_thread::sleep_for(1ms);
      std::lock_guard lock(mutex_);
      if (written_) return written_cycle_;
    }
  }

  // Capture: what arrived since the last call.
  std::vector<received> take_received() {
    std::lock_guard lock(mutex_);
    return std::exchange(got_, {});
  }
  // Capture, for tactus_tests::link.
  std::vector<message> take() {
    std::vector<message> out;
    for (auto& r : take_received()) out.push_back(r.msg);
    return out;
  }

  // Makes the next process callback sleep `d` (an xrun for everyone).
  void stall(std::chrono::milliseconds d) { stall_ms_ = int(d.count()); }

 private:
  static int process(jack_nframes_t n, void* self) {
    auto* me = static_cast<raw_client*>(self);
    if (const int s = me->stall_ms_.exchange(0)) std::this_thread::sleep_for(std::chrono::milliseconds(s));
    void* buf = jack_port_get_buffer(me->p_, n);
    const auto cy = jack::current_cycle(me->c_, n, me->widen_);
    const bool input = jack_port_flags(me->p_) & JackPortIsInput;
    if (!input) jack_midi_clear_buffer(buf);
    std::unique_lock lock(me->mutex_, std::try_to_lock);
    if (!lock.owns_lock()) return 0;  // a test thread holds it: next cycle
    if (input) {
      const auto count = jack_midi_get_event_count(buf);
      for (std::uint32_t i = 0; i < count; ++i) {
        jack_midi_event_t ev;
        if (jack_midi_event_get(&ev, buf, i) != 0) continue;
        auto m = message::from_bytes(std::span<const std::uint8_t>(ev.buffer, ev.size));
        me->got_.push_back({cy.start_frame + ev.time, ev.time, cy, m ? *m : message{}});
      }
    } else if (!me->pending_.empty() && !me->written_) {
      for (auto& [offset, m] : me->pending_) jack_midi_event_write(buf, offset, m.bytes().data(), m.bytes().size());
      me->pending_.clear();
      me->written_ = true;
      me->written_cycle_ = cy;
    }
    return 0;
  }

  jack_client_t* c_ = nullptr;
  jack_port_t* p_ = nullptr;
  jack::frame_widener widen_;
  std::atomic<int> stall_ms_{0};
  std::mutex mutex_;
  std::vector<std::pair<std::uint32_t, message>> pending_;
  bool written_ = false;
  jack::cycle written_cycle_{};
  std::vector<received> got_;
};

double us(clock_type::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

}  // namespace

TEST_CASE("the native input stamps each event with its frame and the time of that frame") {
  asio::io_context io;
  raw_client tx("frames-tx", false);
  input_options o;
  o.client_name = "frames-in";
  input in(io.get_executor(), "frames-tx:out", o);
  REQUIRE(in.backend() == api::jack);
  tactus_tests::link(tx, in);

  const std::vector<std::pair<std::uint32_t, message>> sent{
      {10, message::note_on(0, 60, 100)}, {50, message::control_change(0, 1, 2)}, {100, message::note_off(0, 60)}};
  const auto cycle = tx.write_in_one_cycle(sent);
  std::vector<timed_message> got;
  const auto end = clock_type::now() + 10s;
  while (got.size() < sent.size() && clock_type::now() < end) {
    if (auto m = in.try_receive()) got.push_back(*m);
    else std::this_thread::sleep_for(1ms);
  }
  REQUIRE(got.size() == sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) {
    INFO(i);
    CHECK(got[i].msg == sent[i].second);
    CHECK(got[i].frame == cycle.start_frame + sent[i].first);
    // Each client converts JACK's clock to steady_clock on its own: a microsecond or two apart.
    CHECK(std::abs(us(got[i].time - cycle.time_of_offset(sent[i].first))) <= 5.0);
    if (i) CHECK(got[i].time - got[0].time == cycle.time_of_offset(sent[i].first) - cycle.time_of_offset(10));
  }
  CHECK(in.repeated() == 0);
  CHECK(in.lost_in_backend() == 0);
}

TEST_CASE("send_at writes each message at the frame where its time falls, and counts late ones") {
  asio::io_context io;
  raw_client rx("frames-rx", true);
  output_options o;
  o.client_name = "frames-out";
  output out(io.get_executor(), "frames-rx:in", o);
  REQUIRE(out.backend() == api::jack);
  tactus_tests::link(out, rx);

  // Ten messages 1.37 ms apart (across cycles, at odd offsets), 100 ms ahead; one already past.
  const auto base = clock_type::now() + 100ms;
  std::vector<clock_type::time_point> at;
  for (int i = 0; i < 10; ++i) {
    at.push_back(base + std::chrono::microseconds(1370 * i));
    out.send_at(message::control_change(0, 1, i), at.back());
  }
  out.send_at(message::control_change(0, 2, 0), clock_type::now() - 10ms);
  std::vector<raw_client::received> got;
  const auto end = clock_type::now() + 10s;
  while (got.size() < 11 && clock_type::now() < end) {
    std::this_thread::sleep_for(5ms);
    for (auto& r : rx.take_received()) got.push_back(r);
  }
  REQUIRE(got.size() == 11);
  CHECK(got[0].msg == message::control_change(0, 2, 0));  // the late one, at once
  CHECK(got[0].offset == 0);
  CHECK(out.late() == 1);
  int exact = 0;
  for (int i = 0; i < 10; ++i) {
    const auto& r = got[std::size_t(i) + 1];
    INFO(i);
    REQUIRE(r.msg == message::control_change(0, 1, i));
    // The frame where at[i] falls on the receiver's cycle (each client measures steady_clock
    // against JACK's clock on its own: a time within a microsecond or two of a frame boundary
    // may land on the next frame).
    const double span = double(r.cycle.next_usecs - r.cycle.start_usecs) * 1000.0;
    const double ns = double(jack::cycle::to_nanos(at[std::size_t(i)])) - double(r.cycle.start_usecs) * 1000.0;
    const auto want = r.cycle.start_frame + std::int64_t(std::floor(ns * r.cycle.nframes / span));
    CHECK(std::llabs(r.frame - want) <= 1);
    exact += r.frame == want;
    if (i) CHECK(r.frame > got[std::size_t(i)].frame);
  }
  std::printf("figure: send_at: %d of 10 messages on the exact frame of their time, the others on a neighbour\n",
              exact);
  CHECK(out.late() == 1);
  CHECK(out.dropped() == 0);
}

TEST_CASE("xruns are counted and reported to the input's error handler") {
  asio::io_context io;
  raw_client slow("frames-slow", false);
  input_options o;
  o.client_name = "frames-xrun";
  input in(io.get_executor(), "frames-slow:out", o);
  output_options oo;
  oo.client_name = "frames-xrun-out";
  output out(io.get_executor(), virtual_port, oo);
  std::vector<std::error_code> errors;
  in.on_error([&](std::error_code ec, const std::string&) { errors.push_back(ec); });
  in.on_message([](const timed_message&) {});
  const auto end = clock_type::now() + 10s;
  while ((in.xruns() == 0 || out.xruns() == 0) && clock_type::now() < end) {
    slow.stall(100ms);  // the whole graph misses its deadline
    io.restart();
    io.run_for(200ms);
  }
  CHECK(in.xruns() > 0);
  CHECK(out.xruns() > 0);
  io.restart();
  io.run_for(50ms);
  CHECK(std::count(errors.begin(), errors.end(), make_error_code(io_errc::xrun)) >= 1);
  std::printf("figure: %llu xrun(s) seen by the input, %llu by the output\n", (unsigned long long)in.xruns(),
              (unsigned long long)out.xruns());
  in.on_message(nullptr);
}

TEST_CASE("RtMidi's JACK client stays available: its send_at is a timer, written at frame 0 of a period") {
  asio::io_context io;
  raw_client rx("frames-rtm-rx", true);
  output_options o;
  o.client_name = "frames-rtm";
  o.backend = api::jack_rtmidi;
  output out(io.get_executor(), "frames-rtm-rx:in", o);
  CHECK(out.backend() == api::jack_rtmidi);
  tactus_tests::link(out, rx);
  const auto at = clock_type::now() + 50ms;
  out.send_at(message::control_change(0, 3, 1), at);
  out.send_at(message::control_change(0, 3, 2), clock_type::now() - 1ms);  // past: at once, late
  CHECK(out.late() == 1);
  io.run_for(100ms);
  std::vector<raw_client::received> got;
  const auto end = clock_type::now() + 10s;
  while (got.size() < 2 && clock_type::now() < end) {
    std::this_thread::sleep_for(5ms);
    for (auto& r : rx.take_received()) got.push_back(r);
  }
  REQUIRE(got.size() == 2);
  CHECK(got[0].msg == message::control_change(0, 3, 2));
  CHECK(got[1].msg == message::control_change(0, 3, 1));
  CHECK(got[1].offset == 0);        // RtMidi writes at the start of the period
  CHECK(got[1].cycle.end() >= at);  // never before its time (a cycle that began after the timer fired)
  std::printf("figure: jack_rtmidi send_at: written %+.0f us from its time (frame 0 of the next period)\n",
              us(got[1].cycle.start() - at));
}
