// SPDX-License-Identifier: BSL-1.0
// The usage comments of parser.hpp, smf.hpp, smf_writer.hpp and smf_reader.hpp, whole: parse a
// byte stream, record a take with a tempo change, write it, read it back and play it from the file.
// Laid out as the documentation shows it (tests/snippets_test.cpp compares), so not formatted:
// clang-format off
#include <tactus/midi/parser.hpp>
#include <tactus/midi/smf.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <vector>

int main() {
  int handled = 0, played = 0;
  auto handle = [&](const tactus::midi::message&) { ++handled; };
  auto play = [&](std::chrono::nanoseconds, const tactus::midi::message&) { ++played; };
  const std::vector<std::uint8_t> chunk{0x90, 60, 100, 62, 100, 0xF8, 0x80, 60, 0};  // running status, a clock

  tactus::midi::parser p;
  p.feed(chunk, [&](const tactus::midi::message& m) { handle(m); });

  const auto start = std::chrono::steady_clock::now();
  const auto now = start + std::chrono::seconds(1);
  tactus::midi::smf_writer w{480, std::chrono::microseconds{500'000}};  // 480 ticks/quarter, 120 bpm
  w.add(now - start, tactus::midi::message::note_on(9, 36, 100));
  w.set_tempo(now - start, tactus::bpm{97.3});
  w.write("take.mid");
  auto file = tactus::midi::smf_read("take.mid");
  auto when = file.time_at(file.tracks[0].events[0].tick);
  for (const auto& e : file.tracks[0].events) play(file.time_at(e.tick), e.msg);

  std::filesystem::remove("take.mid");
  std::printf("%d parsed, %d played, the note at %.3f s\n", handled, played, std::chrono::duration<double>(when).count());
  return handled == 4 && played == 1 && when == std::chrono::seconds(1) ? 0 : 1;
}
