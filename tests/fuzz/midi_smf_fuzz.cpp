// SPDX-License-Identifier: BSL-1.0
#include <tactus/midi/smf.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <stdexcept>

// libFuzzer target for tactus::midi::smf_read; not part of ctest. tests/fuzz/run.sh builds it, replays
// tests/fuzz/corpus/smf and fuzzes for a while (CI: 30 s); by hand:
//
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude \
//     tests/fuzz/midi_smf_fuzz.cpp -o build/fuzz/midi_smf_fuzz
//   build/fuzz/midi_smf_fuzz -max_total_time=300 build/fuzz/corpus-smf
//
// Seed the corpus with any .mid files. The reader must either return or throw smf_error:
// any other exception, or any sanitizer report, is a bug. Files it accepts must survive a
// write/read round trip of their MIDI messages.

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tactus::midi;
  smf_file f;
  try {
    f = smf_read(std::span<const std::uint8_t>(data, size));
  } catch (const smf_error&) {
    return 0;
  }
  if (f.is_smpte() || f.tracks.empty() || f.tracks.size() > 0xFFFF) return 0;
  smf_writer w{f.ticks_per_quarter()};
  for (std::size_t t = 0; t < f.tracks.size(); ++t) {
    w.set_track_name(static_cast<int>(t), f.tracks[t].name());  // also creates empty tracks
    for (const auto& e : f.tracks[t].events) w.add_at_tick(e.tick, e.msg, static_cast<int>(t));
  }
  smf_file back;
  try {
    back = smf_read(w.bytes(1));
  } catch (const std::length_error&) {
    return 0;  // two events further apart than one delta time can say: fine to refuse
  }
  for (std::size_t t = 0; t < f.tracks.size(); ++t) {
    auto expected = f.tracks[t].events;
    std::erase_if(expected, [](const smf_event& e) { return e.msg.is_realtime(); });
    std::stable_sort(expected.begin(), expected.end(), [](const auto& a, const auto& b) { return a.tick < b.tick; });
    if (back.tracks[t].events != expected) std::abort();
  }
  return 0;
}
