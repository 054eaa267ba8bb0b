// SPDX-License-Identifier: BSL-1.0
// midi_panic (examples/midi_panic.cpp), the one remedy after a SIGKILL: run as a user runs it, to
// a frame-stamped capture port of this test (plain libjack) on the `jack` fixture's server, which
// must hear exactly 16 x 128 note-offs and then All Notes Off and Sustain off on each of the 16
// channels: in that order, none twice, always; all of them unless the server reported an xrun
// meanwhile (then how many arrived is printed as a figure).
#include "support/catch.hpp"
#include "support/fault_injection.hpp"
#include "support/jack_capture.hpp"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#if !defined(MIDI_PANIC_EXE)
#error "MIDI_PANIC_EXE: the example's path (see tests/CMakeLists.txt)"
#endif

using namespace std::chrono_literals;
using tactus::midi::message;
using tactus::midi::message_type;
using tactus_tests::example;

namespace {
// The server said it failed its own cycles during the run (an xrun, or a cycle run twice on a
// loaded machine): JACK then drops a late client's events, and no client can see which.
bool server_trouble(const tactus_tests::jack_capture& cap) {
  return cap.xruns() || cap.repeated_cycles() || cap.lost_in_backend();
}
}  // namespace

TEST_CASE("midi_panic sends a note-off for every key then All Notes Off and Sustain off on all 16 channels") {
  tactus_tests::jack_capture cap("panic-capture");  // plain libjack: it also hears the server's xruns
  example panic({MIDI_PANIC_EXE, "--port", "panic-capture:in"});
  const auto status = panic.wait(10s);
  INFO("stderr: " << panic.err());
  REQUIRE(status == 0);
  CHECK_THAT(panic.err(), Catch::Matchers::ContainsSubstring("2080 messages"));  // what it sent

  std::vector<message> got;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (got.size() < 16 * 128 + 32 && std::chrono::steady_clock::now() < deadline) {
    for (const auto& e : cap.take())
      if (auto m = e.msg()) got.push_back(*m);
    std::this_thread::sleep_for(2ms);
  }
  for (const auto& e : cap.drain())  // anything more would show now
    if (auto m = e.msg()) got.push_back(*m);
  CHECK(cap.overflow() == 0);

  // In order: every note-off before the first control change, each (channel, key) once; then CC
  // 123 and CC 64, value 0.
  std::set<std::pair<int, int>> ended;
  std::set<int> all_notes_off, sustain_off;
  std::size_t note_offs = 0;
  bool in_ccs = false;
  for (const auto& m : got) {
    if (m.is_note_off()) {
      CHECK_FALSE(in_ccs);
      ++note_offs;
      ended.insert({m.channel(), m.key()});
    } else {
      REQUIRE(m.type() == message_type::control_change);
      REQUIRE(m.data2() == 0);
      in_ccs = true;
      if (m.data1() == 123) all_notes_off.insert(m.channel());
      if (m.data1() == 64) sustain_off.insert(m.channel());
    }
  }
  CHECK(ended.size() == note_offs);  // none twice
  CHECK(got.size() <= 16 * 128 + 32);

  // Every one arrived, unless the server failed its own cycles meanwhile: then the shortfall is a
  // figure.
  if (server_trouble(cap)) {
    std::printf(
        "figure: midi_panic: %zu of 2080 messages heard; the server reported %llu xruns, %llu repeated "
        "cycles, %llu events lost\n",
        got.size(), (unsigned long long)cap.xruns(), (unsigned long long)cap.repeated_cycles(),
        (unsigned long long)cap.lost_in_backend());
    return;
  }
  CHECK(got.size() == 16 * 128 + 32);
  CHECK(ended.size() == 16 * 128);  // every (channel, key)
  CHECK(all_notes_off.size() == 16);
  CHECK(sustain_off.size() == 16);
}

TEST_CASE("midi_panic interrupted still sends All Notes Off and Sustain off on every channel") {
  tactus_tests::jack_capture cap("panic-capture");
  example panic({MIDI_PANIC_EXE, "--port", "panic-capture:in"});
  std::vector<message> got;
  const auto take = [&] {
    for (const auto& e : cap.take())
      if (auto m = e.msg()) got.push_back(*m);
  };
  for (const auto until = std::chrono::steady_clock::now() + 10s;
       got.size() < 64 && std::chrono::steady_clock::now() < until;)
    take(), std::this_thread::sleep_for(2ms);
  REQUIRE(got.size() >= 64);  // under way
  panic.signal(SIGINT);
  const auto status = panic.wait(1s);
  INFO("stderr: " << panic.err());
  REQUIRE(status == 0);
  std::this_thread::sleep_for(100ms);
  take();
  std::set<int> all_notes_off, sustain_off;
  for (const auto& m : got)
    if (m.type() == message_type::control_change) (m.data1() == 123 ? all_notes_off : sustain_off).insert(m.channel());
  CHECK(got.size() < 16 * 128 + 32);  // the note-offs were cut short
  if (server_trouble(cap)) {          // then a figure
    std::printf(
        "figure: midi_panic interrupted: CC 123 on %zu and CC 64 on %zu of 16 channels heard; the server "
        "reported %llu xruns\n",
        all_notes_off.size(), sustain_off.size(), (unsigned long long)cap.xruns());
    return;
  }
  CHECK(all_notes_off.size() == 16);
  CHECK(sustain_off.size() == 16);
}

TEST_CASE("midi_panic without --port or with no such port says so in one line") {
  {
    example e({MIDI_PANIC_EXE});
    CHECK(e.wait(10s) == 2);
    CHECK(tactus_tests::lines_with(e.err(), "--port") == 1);
  }
  {
    example e({MIDI_PANIC_EXE, "--port", "no-such-port-xyz"});
    CHECK(e.wait(10s) == 1);
    CHECK(tactus_tests::lines_with(e.err(), "midi_panic:") == 1);
  }
}
