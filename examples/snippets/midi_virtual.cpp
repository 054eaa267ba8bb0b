// SPDX-License-Identifier: BSL-1.0
// The usage comments of note_tracker.hpp, output_concept.hpp and testing/recording_output.hpp,
// whole: MIDI code tested without a port, in virtual time. Exits 1 if a note is left sounding or
// the recording is not what the comments say.
// Laid out as the documentation shows it (tests/snippets_test.cpp compares), so not formatted:
// clang-format off
#include <tactus/midi/note.hpp>
#include <tactus/midi/note_tracker.hpp>
#include <tactus/midi/output_concept.hpp>
#include <tactus/testing/manual_clock.hpp>
#include <tactus/testing/recording_output.hpp>
#include <asio.hpp>
#include <chrono>
#include <cstdio>

struct printer {
  tactus::midi::note_tracker notes;
  void send(const tactus::midi::message& m) { std::puts(m.to_string().c_str()); notes.track(m); }
  int open_count(int channel, int key) const { return notes.open_count(channel, key); }
};
static_assert(tactus::midi::note_output<printer>);

long long ms(tactus::testing::manual_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

int tracked() {
  printer port;
  tactus::midi::note_tracker notes;
  notes.track(tactus::midi::message::note_on(9, 36, 100));
  notes.end_all([&](const tactus::midi::message& m) { port.send(m); });  // 89 24 00, B9 7B 00, B9 40 00
  return notes.open_notes() == 0 && port.notes.open_notes() == 0 ? 0 : 1;
}

int recorded() {
  asio::io_context io;
  tactus::testing::manual_clock::reset();
  using clock = tactus::testing::manual_clock;
  tactus::testing::recording_output<clock> out;
  tactus::basic_metronome<clock> m{io.get_executor(), tactus::bpm{120}};
  asio::co_spawn(io, m.run(), tactus::rethrow);
  tactus::midi::async_note(out, m, 9, 36, 100, tactus::beats{1, 2}, [](std::error_code) {});
  tactus::testing::advance(io, std::chrono::seconds(1));  // virtual: returns at once
  for (const auto& e : out.events())                      // 0 ms: note_on ch=10 ..., 250 ms: note_off ch=10 ...
    std::printf("%lld ms: %s\n", ms(e.time), e.msg.to_string().c_str());
  m.stop();
  io.run();
  if (out.events().size() != 2 || ms(out.events()[1].time) != 250) return 1;
  return out.open_notes() == 0 ? 0 : 1;
}

int main() { return tracked() + recorded(); }
