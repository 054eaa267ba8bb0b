// SPDX-License-Identifier: BSL-1.0
// midi_panic (examples/midi_panic.cpp), the one remedy after a SIGKILL: run as a user runs it, to
// a raw JACK capture port of this test on the `jack` fixture's server, which must hear exactly
// 16 x 128 note-offs and then All Notes Off and Sustain off on each of the 16 channels.
#include "support/catch.hpp"
#include "support/fault_injection.hpp"

#include <chrono>
#include <csignal>
#include <set>
#include <string>
#include <utility>

#if !defined(MIDI_PANIC_EXE)
#error "MIDI_PANIC_EXE: the example's path (see tests/CMakeLists.txt)"
#endif

using namespace std::chrono_literals;
using tactus::midi::message_type;
using tactus_tests::example;

TEST_CASE("midi_panic sends a note-off for every key then All Notes Off and Sustain off on all 16 channels") {
  tactus_tests::capture cap("panic-capture");
  example panic({MIDI_PANIC_EXE, "--port", "panic-capture:in"});
  const auto status = panic.wait(10s);
  INFO("stderr: " << panic.err());
  REQUIRE(status == 0);
  const auto n = cap.wait_for(16 * 128 + 32, 5s);
  std::this_thread::sleep_for(50ms);  // anything more would show now
  CHECK(cap.size() == n);
  REQUIRE(n == 16 * 128 + 32);
  const auto got = cap.messages();
  std::set<std::pair<int, int>> ended;
  std::set<int> all_notes_off, sustain_off;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const auto& m = got[i];
    if (i < 16 * 128) {
      REQUIRE(m.is_note_off());
      ended.insert({m.channel(), m.key()});
    } else {
      REQUIRE(m.type() == message_type::control_change);
      REQUIRE(m.data2() == 0);
      if (m.data1() == 123) all_notes_off.insert(m.channel());
      if (m.data1() == 64) sustain_off.insert(m.channel());
    }
  }
  CHECK(ended.size() == 16 * 128);  // every (channel, key) once
  CHECK(all_notes_off.size() == 16);
  CHECK(sustain_off.size() == 16);
  CHECK_THAT(panic.err(), Catch::Matchers::ContainsSubstring("2080 messages"));
}

TEST_CASE("midi_panic interrupted still sends All Notes Off and Sustain off on every channel") {
  tactus_tests::capture cap("panic-capture");
  example panic({MIDI_PANIC_EXE, "--port", "panic-capture:in"});
  REQUIRE(cap.wait_for(64, 10s) >= 64);  // under way
  panic.signal(SIGINT);
  const auto status = panic.wait(1s);
  INFO("stderr: " << panic.err());
  REQUIRE(status == 0);
  std::this_thread::sleep_for(100ms);
  const auto got = cap.messages();
  std::set<int> all_notes_off, sustain_off;
  for (const auto& m : got)
    if (m.type() == message_type::control_change) (m.data1() == 123 ? all_notes_off : sustain_off).insert(m.channel());
  CHECK(got.size() < 16 * 128 + 32);  // the note-offs were cut short
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
