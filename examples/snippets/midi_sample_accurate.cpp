// SPDX-License-Identifier: BSL-1.0
// README's "Sample-accurate MIDI on JACK" and the usage comment of note.hpp, whole, on a JACK
// server (the test suite's own): a metronome schedules a note at a beat position in one call;
// our own input, a stand-in "synth", receives each note-on stamped with its JACK frame and prints
// how far that is from its beat's time (within a frame, 20.8 us, when handed over in time). Exits
// 1 unless every note arrived and none was left sounding.
// Laid out as the documentation shows it (tests/snippets_test.cpp compares), so not formatted:
// clang-format off
#include <tactus/midi/input.hpp>
#include <tactus/midi/note.hpp>
#include <tactus/midi/output.hpp>
#include <asio.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace midi = tactus::midi;
using namespace std::chrono_literals;

int main() {
  asio::io_context io;
  auto ex = io.get_executor();
  midi::input synth{ex, midi::virtual_port, {.client_name = "synth"}};
  std::vector<midi::timed_message> heard;
  synth.on_message([&](const midi::timed_message& m) { if (m.msg.is_note_on()) heard.push_back(m); });
  std::vector<std::chrono::steady_clock::time_point> wanted;
  asio::steady_timer end(io, 10s);
  end.async_wait([&](std::error_code) { io.stop(); });

  tactus::midi::output out{ex, "synth"};                  // the native JACK backend
  tactus::metronome m{ex, tactus::bpm{120}};
  m.on_beat([&](const tactus::tick& b) -> asio::awaitable<void> {   // the next beat, exactly
    co_await tactus::midi::async_note_at(out, m, b.position + tactus::beats{1}, 9, 36, 110, tactus::beats{1, 4}, asio::use_awaitable);
  });
  m.on_beat([&](const tactus::tick& b) {                  // bookkeeping for the check below
    if (b.position == tactus::beats{8}) return m.stop();  // (the note for beat 9 is not handed over)
    wanted.push_back(m.time_at(b.position + tactus::beats{1}));
  });

  auto play = [&]() -> asio::awaitable<void> {
    asio::steady_timer settle(ex, 500ms);                 // once the connection is live
    co_await settle.async_wait(asio::use_awaitable);
    co_await m.run();
    asio::steady_timer drain(ex, 200ms);                  // the last note reaches the synth
    co_await drain.async_wait(asio::use_awaitable);
    synth.on_message(nullptr);
    end.cancel();
  };
  asio::co_spawn(ex, play(), tactus::rethrow);
  io.run();

  std::size_t on_time = 0;
  for (std::size_t i = 0; i < heard.size() && i < wanted.size(); ++i) {
    const auto off = std::chrono::duration<double, std::micro>(heard[i].time - wanted[i]).count();
    std::printf("note %zu: frame %lld, %+.1f us from its beat\n", i, (long long)heard[i].frame, off);
    if (off > -25 && off < 25) ++on_time;                     // a frame is 20.8 us at 48 kHz
  }
  std::printf("%zu of %zu notes on the frame of their beat, %llu late\n", on_time, wanted.size(),
              (unsigned long long)out.late());
  // On a loaded machine a note handed over late goes out at once (counted late): the check is
  // that every note arrived and none is left sounding; the frames are printed, not asserted.
  return heard.size() == wanted.size() && !wanted.empty() && out.open_notes() == 0 ? 0 : 1;
}
