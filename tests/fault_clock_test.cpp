// SPDX-License-Identifier: BSL-1.0
// Faults in the clock a program follows (issue 12), on the `jack` fixture's server: the drum
// machine follows a MIDI clock and plays into a raw capture port of this test, while the clock
// source is killed (SIGKILL) and restarted, or toggles STOP and START every few milliseconds.
// Bounded in time; no crash, no hang, no spin (the drum machine's CPU time), no stuck note (the
// capture), and Ctrl-C still ends it with status 0 within a second.
#include "support/catch.hpp"
#include "support/fault_injection.hpp"

#include <RtMidi.h>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#if !defined(DRUM_MACHINE_EXE) || !defined(CLOCK_MASTER_EXE)
#error "the examples' paths (see tests/CMakeLists.txt)"
#endif

using namespace std::chrono_literals;
using tactus::midi::message;
using tactus_tests::example;
using tactus_tests::fault_clock;

namespace {

std::size_t note_ons(const std::vector<message>& got) {
  std::size_t n = 0;
  for (const auto& m : got) n += m.is_note_on();
  return n;
}

// Waits until the capture has heard `n` more note-ons than `from`; returns whether it did.
bool wait_for_notes(tactus_tests::capture& cap, std::vector<message>& heard, std::size_t n,
                    fault_clock::duration timeout) {
  const auto from = note_ons(heard);
  const auto end = fault_clock::now() + timeout;
  while (fault_clock::now() < end) {
    for (auto& m : cap.take()) heard.push_back(m);
    if (note_ons(heard) >= from + n) return true;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

// SIGINT to `e`: it must end within a second with status 0.
void check_ctrl_c(example& e) {
  e.signal(SIGINT);
  const auto sent = fault_clock::now();
  auto status = e.wait(1s);
  const double took = std::chrono::duration<double>(fault_clock::now() - sent).count();
  INFO("stdout: " << e.out() << "stderr: " << e.err() << "took " << took << " s");
  if (!status) status = e.wait(5s);
  REQUIRE(status.has_value());
  CHECK(took < 1.0);
  CHECK(*status == 0);
}

}  // namespace

TEST_CASE("fault: the clock source is killed and restarted under the drum machine") {
  tactus_tests::capture cap("fault-clock");
  std::vector<message> heard;
  // The drum machine's virtual clock input, drum_machine_clock:in, which clock_master connects to
  // (and to which it sends START as it starts: a START sent before a follower connects is lost).
  example dm({DRUM_MACHINE_EXE, "--clock", "midi", "--drums-port", "fault-clock", "--bass-port", "fault-clock"});
  REQUIRE(dm.wait_for("waiting for START"));
  const std::vector<std::string> master_args{CLOCK_MASTER_EXE, "--bpm", "300", "--port", "drum_machine_clock"};
  auto master = std::make_unique<example>(master_args);
  REQUIRE(master->wait_for("clock at"));
  REQUIRE(wait_for_notes(cap, heard, 4, 10s));  // following, playing
  const auto cpu_start = tactus_tests::cpu_time(dm.pid());
  const auto t_start = fault_clock::now();

  master->signal(SIGKILL);  // the source dies without STOP
  master->wait(5s);
  // Lost after two beats (0.4 s at 300 BPM): every note ends, and nothing plays until the clock
  // is back. JACK itself stalls when a client dies without closing (the server waits for it up
  // to its client timeout, 500 ms by default, then removes it), so what the drum machine sent
  // meanwhile arrives late: look once that is over.
  std::this_thread::sleep_for(1500ms);
  for (auto& m : cap.take()) heard.push_back(m);
  {
    INFO("drum machine: " << dm.out().substr(dm.out().size() > 600 ? dm.out().size() - 600 : 0));
    CHECK(tactus_tests::notes_left_sounding(heard) == 0);
  }
  const auto at_loss = note_ons(heard);
  std::this_thread::sleep_for(500ms);
  for (auto& m : cap.take()) heard.push_back(m);
  CHECK(note_ons(heard) == at_loss);  // silence while the clock is gone

  // The source comes back, connects, sends START: the follower plays again.
  master = std::make_unique<example>(master_args);
  REQUIRE(master->wait_for("clock at"));
  CHECK(wait_for_notes(cap, heard, 4, 5s));

  const auto cpu_end = tactus_tests::cpu_time(dm.pid());
  const double wall = std::chrono::duration<double>(fault_clock::now() - t_start).count();
  REQUIRE((cpu_start && cpu_end));
  const double cpu = (*cpu_end - *cpu_start).count();
  std::printf("figure: the drum machine used %.3f s of CPU in %.3f s through the loss and return of its clock\n", cpu,
              wall);
  CHECK(cpu < 0.5 * wall);  // no spin
  check_ctrl_c(dm);
  std::this_thread::sleep_for(50ms);
  for (auto& m : cap.take()) heard.push_back(m);
  CHECK(tactus_tests::notes_left_sounding(heard) == 0);
  master->signal(SIGINT);
  CHECK(master->wait(2s) == 0);
}

TEST_CASE("fault: STOP and START toggled every few milliseconds under the drum machine") {
  tactus_tests::capture cap("fault-clock");
  RtMidiOut src(RtMidi::UNIX_JACK, "toggler");
  src.openVirtualPort("src");
  auto send = [&](const message& m) { src.sendMessage(m.bytes().data(), m.bytes().size()); };
  example dm({DRUM_MACHINE_EXE, "--clock", "midi", "--clock-port", "toggler", "--drums-port", "fault-clock",
              "--bass-port", "fault-clock"});
  REQUIRE(dm.wait_for("waiting for START"));
  std::this_thread::sleep_for(200ms);  // its input connected
  // 300 BPM (a pulse every 8.3 ms) for two seconds, STOP and START in turn every 5 ms between.
  const auto cpu_start = tactus_tests::cpu_time(dm.pid());
  const auto start = fault_clock::now();
  const auto pulse = std::chrono::duration_cast<fault_clock::duration>(std::chrono::duration<double>(60.0 / 300 / 24));
  auto next_pulse = start;
  auto next_toggle = start + 5ms;
  bool playing = false;
  send(message::start());
  playing = true;
  while (fault_clock::now() - start < 2s) {
    const auto next = std::min(next_pulse, next_toggle);
    std::this_thread::sleep_until(next);
    if (next == next_pulse) {
      send(message::clock());
      next_pulse += pulse;
    } else {
      send(playing ? message::stop() : message::start());
      playing = !playing;
      next_toggle += 5ms;
    }
  }
  send(message::stop());
  std::this_thread::sleep_for(100ms);
  const auto cpu_end = tactus_tests::cpu_time(dm.pid());
  const auto heard = cap.take();
  INFO(heard.size() << " messages heard");
  CHECK(tactus_tests::notes_left_sounding(heard) == 0);  // STOP ended every note, every time
  REQUIRE((cpu_start && cpu_end));
  const double cpu = (*cpu_end - *cpu_start).count();
  std::printf("figure: STOP/START every 5 ms for 2 s: %zu note-ons heard, %.3f s of CPU\n", note_ons(heard), cpu);
  CHECK(cpu < 1.0);  // no spin
  check_ctrl_c(dm);
  tactus::midi::quiesce(src);
}
