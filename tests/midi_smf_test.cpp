// SPDX-License-Identifier: BSL-1.0
#include <tactus/midi/smf.hpp>

#include "support/catch.hpp"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <sys/stat.h>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <vector>

// Standard MIDI Files: exact bytes against a hand-assembled file, write/read round trips in
// format 0 and 1, drift-free time to tick conversion, reading files other writers produce
// (running status, split sysex), malformed input, and I/O errors.

using namespace std::chrono_literals;
using tactus::midi::message;
using tactus::midi::smf_error;
using tactus::midi::smf_event;
using tactus::midi::smf_read;
using tactus::midi::smf_writer;
using bytes = std::vector<std::uint8_t>;
using Catch::Matchers::ContainsSubstring;

namespace {

// A scratch file in the system temp directory, removed at scope exit.
struct temp_file {
  std::filesystem::path path =
      std::filesystem::temp_directory_path() /
      ("tactus_smf_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + ".mid");
  ~temp_file() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
  static inline int counter = 0;
};

bytes header(int format, int ntracks, int division) {
  return {'M',
          'T',
          'h',
          'd',
          0,
          0,
          0,
          6,
          0,
          std::uint8_t(format),
          std::uint8_t(ntracks >> 8),
          std::uint8_t(ntracks),
          std::uint8_t(division >> 8),
          std::uint8_t(division)};
}

bytes chunk(const char* type, const bytes& body) {
  bytes out(type, type + 4);
  const auto n = body.size();
  out.insert(out.end(), {std::uint8_t(n >> 24), std::uint8_t(n >> 16), std::uint8_t(n >> 8), std::uint8_t(n)});
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

bytes file_of(const bytes& track_body, int division = 96) {
  auto f = header(0, 1, division);
  const auto t = chunk("MTrk", track_body);
  f.insert(f.end(), t.begin(), t.end());
  return f;
}

bytes sysex_bytes(std::initializer_list<std::uint8_t> b) { return bytes(b); }

}  // namespace

TEST_CASE("smf_writer writes the exact bytes of a known file", "[midi][smf]") {
  smf_writer w{96, 500'000us};
  w.set_time_signature(4, 4);
  // Deltas 0, 127, 128, 0x3FFF, 0x4000, 0x0FFFFFFF: every VLQ length boundary.
  std::uint64_t t = 0;
  w.add_at_tick(t += 0, message::note_on(0, 60, 100));
  w.add_at_tick(t += 127, message::note_off(0, 60));
  w.add_at_tick(t += 128, message::program_change(1, 5));
  w.add_at_tick(t += 0x3FFF, message::control_change(0, 7, 100));
  w.add_at_tick(t += 0x4000, message::sysex(sysex_bytes({0xF0, 0x01, 0x02, 0xF7})));
  w.add_at_tick(t += 0x0FFFFFFF, message::song_position(1));
  w.add_at_tick(5, message::clock());  // realtime: not a file event
  CHECK(w.skipped() == 1);
  CHECK(w.size() == 6);

  const bytes expected{
      'M',  'T',  'h',  'd',  0x00, 0x00, 0x00, 0x06,        // header chunk, length 6
      0x00, 0x00, 0x00, 0x01, 0x00, 0x60,                    // format 0, 1 track, 96 ticks per quarter
      'M',  'T',  'r',  'k',  0x00, 0x00, 0x00, 0x35,        // track chunk, 53 bytes
      0x00, 0xFF, 0x51, 0x03, 0x07, 0xA1, 0x20,              // tempo 500000 us
      0x00, 0xFF, 0x58, 0x04, 0x04, 0x02, 0x18, 0x08,        // 4/4, 24 clocks a click, 8 32nds a quarter
      0x00, 0x90, 0x3C, 0x64,                                // delta 0
      0x7F, 0x80, 0x3C, 0x00,                                // delta 127
      0x81, 0x00, 0xC1, 0x05,                                // delta 128
      0xFF, 0x7F, 0xB0, 0x07, 0x64,                          // delta 0x3FFF
      0x81, 0x80, 0x00, 0xF0, 0x03, 0x01, 0x02, 0xF7,        // delta 0x4000, sysex F0 <len 3> 01 02 F7
      0xFF, 0xFF, 0xFF, 0x7F, 0xF7, 0x03, 0xF2, 0x01, 0x00,  // delta 0x0FFFFFFF, F7 escape song position
      0x00, 0xFF, 0x2F, 0x00,                                // end of track
  };
  CHECK(w.bytes(0) == expected);

  SECTION("format 1 of the same has one track and the same track bytes") {
    auto f1 = expected;
    f1[9] = 1;
    CHECK(w.bytes(1) == f1);
  }
  SECTION("a delta beyond 0x0FFFFFFF cannot be written") {
    w.add_at_tick(t + 0x10000000, message::note_on(0, 1, 1));
    CHECK_THROWS_AS(w.bytes(), std::length_error);
  }
  SECTION("it reads back") {
    const auto f = smf_read(expected);
    CHECK(f.format == 0);
    CHECK(f.ticks_per_quarter() == 96);
    REQUIRE(f.tracks.size() == 1);
    const auto& ev = f.tracks[0].events;
    REQUIRE(ev.size() == 6);
    CHECK(ev[0] == smf_event{0, message::note_on(0, 60, 100)});
    CHECK(ev[2] == smf_event{255, message::program_change(1, 5)});
    CHECK(ev[4].msg == message::sysex(sysex_bytes({0xF0, 0x01, 0x02, 0xF7})));
    CHECK(ev[5] == smf_event{t, message::song_position(1)});
    REQUIRE(f.tempo_map().size() == 1);
    CHECK(f.tempo_map()[0].quarter == 500'000us);
    REQUIRE(f.tracks[0].meta.size() == 2);
    CHECK(f.tracks[0].meta[1].type == 0x58);
    CHECK(f.tracks[0].meta[1].data == bytes{4, 2, 24, 8});
  }
}

TEST_CASE("smf_writer rejects bad arguments", "[midi][smf]") {
  CHECK_THROWS_AS(smf_writer(0), std::invalid_argument);
  CHECK_THROWS_AS(smf_writer(0x8000), std::invalid_argument);
  CHECK_THROWS_AS(smf_writer(480, 0us), std::invalid_argument);
  CHECK_THROWS_AS(smf_writer(480, 16'777'216us), std::invalid_argument);
  smf_writer w;
  CHECK_THROWS_AS(w.add(-1ns, message::clock()), std::out_of_range);
  CHECK_THROWS_AS(w.add(0ns, message{}), std::invalid_argument);
  CHECK_THROWS_AS(w.add(0ns, message::stop(), -1), std::invalid_argument);
  CHECK_THROWS_AS(w.add(0ns, message::stop(), 65535), std::invalid_argument);
  CHECK_THROWS_AS(w.set_time_signature(4, 3), std::invalid_argument);
  CHECK_THROWS_AS(w.set_time_signature(0, 4), std::invalid_argument);
  CHECK_THROWS_AS(w.bytes(2), std::invalid_argument);
}

TEST_CASE("smf_writer converts time to ticks without drift", "[midi][smf]") {
  SECTION("1 ms steps at 120 bpm, 480 ticks a quarter: 0.96 tick each, rounded from the absolute time") {
    const smf_writer w{480, 500'000us};
    bool exact = true;
    for (std::uint64_t n = 0; n <= 3'600'000; n += 1) {  // one hour of milliseconds
      const auto expected = (n * 96 * 2 + 100) / 200;    // round(n * 0.96), halves up
      exact = exact && w.to_tick(std::chrono::milliseconds(n)) == expected;
    }
    CHECK(exact);
    CHECK(w.to_tick(3'600'000ms) == 3'456'000);  // summing rounded 1-tick deltas would give 3'600'000
  }
  SECTION("beats at an odd tempo land on exact multiples of the division, for days") {
    const smf_writer w{480, 333'333us};
    bool exact = true;
    for (std::uint64_t beat = 0; beat < 1'000'000; beat += 7)
      exact = exact && w.to_tick(beat * 333'333us) == beat * 480;
    CHECK(exact);
    CHECK(w.to_tick(999'999 * 333'333us + 1us) == 999'999ull * 480);  // 1 us is under half a tick
  }
  SECTION("rounding to the nearest tick") {
    const smf_writer w{1, 1us};  // one tick per microsecond
    CHECK(w.to_tick(499ns) == 0);
    CHECK(w.to_tick(500ns) == 1);
    CHECK(w.to_tick(1499ns) == 1);
    CHECK(w.to_tick(1500ns) == 2);
  }
  SECTION("the largest durations do not overflow") {
    const smf_writer w{0x7FFF, 1us};
    CHECK_THROWS_AS(w.to_tick(std::chrono::nanoseconds::max()), std::out_of_range);
    const smf_writer slow{0x7FFF, 16'777'215us};
    CHECK(slow.to_tick(std::chrono::hours(24 * 365)) > 0);
  }
}

TEST_CASE("smf write and read round trip", "[midi][smf]") {
  smf_writer w{480, 400'000us};  // 150 bpm
  w.set_time_signature(7, 8);
  w.set_track_name(1, "drums");
  w.set_track_name(2, "bass");
  std::vector<std::vector<smf_event>> expected(3);
  // Added out of order and with ties: written sorted by tick, ties in insertion order.
  auto add = [&](std::chrono::nanoseconds t, const message& m, int track) {
    w.add(t, m, track);
    if (!m.is_realtime()) expected[std::size_t(track)].push_back({w.to_tick(t), m});
  };
  add(400ms, message::note_on(9, 36, 100), 1);
  add(0ms, message::note_on(9, 42, 80), 1);
  add(400ms, message::note_on(9, 38, 90), 1);
  add(450ms, message::note_off(9, 36), 1);
  add(0ms, message::note_on(1, 40, 100), 2);
  add(123'456'789ns, message::pitch_bend(1, -4000), 2);
  add(200ms, message::clock(), 1);
  bytes long_sysex(3000, 0x11);
  long_sysex.front() = 0xF0;
  long_sysex.back() = 0xF7;
  add(1s, message::sysex(long_sysex), 0);  // long: 2-byte VLQ length
  for (auto& t : expected)
    std::stable_sort(t.begin(), t.end(), [](const auto& a, const auto& b) { return a.tick < b.tick; });

  temp_file tmp;
  SECTION("format 1") {
    w.write(tmp.path, 1);
    const auto f = smf_read(tmp.path);
    CHECK(f.format == 1);
    CHECK(f.division == 480);
    REQUIRE(f.tracks.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) CHECK(f.tracks[i].events == expected[i]);
    CHECK(f.tracks[1].name() == "drums");
    CHECK(f.tracks[2].name() == "bass");
    REQUIRE(f.tempo_map().size() == 1);
    CHECK(f.tempo_map()[0].quarter == 400'000us);
    CHECK(f.tracks[0].meta[1].data == bytes{7, 3, 24, 8});
    CHECK(f.tracks[1].events[0].msg == message::note_on(9, 42, 80));
    CHECK(f.tracks[1].events[1].msg == message::note_on(9, 36, 100));
    CHECK(f.tracks[1].events[2].msg == message::note_on(9, 38, 90));
  }
  SECTION("format 0 merges tracks by tick, lower track first on ties") {
    w.write(tmp.path, 0);
    const auto f = smf_read(tmp.path);
    CHECK(f.format == 0);
    REQUIRE(f.tracks.size() == 1);
    std::vector<smf_event> merged;
    for (const auto& t : expected) merged.insert(merged.end(), t.begin(), t.end());
    std::stable_sort(merged.begin(), merged.end(), [](const auto& a, const auto& b) { return a.tick < b.tick; });
    CHECK(f.tracks[0].events == merged);
    CHECK(f.tracks[0].events[0].msg == message::note_on(9, 42, 80));
    CHECK(f.tracks[0].events[1].msg == message::note_on(1, 40, 100));
  }
  SECTION("write() and bytes() agree, clear() empties") {
    w.write(tmp.path);
    CHECK(smf_read(tmp.path).tracks.size() == w.track_count());
    CHECK(smf_read(w.bytes()).tracks[1].events == expected[1]);
    w.clear();
    CHECK(w.size() == 0);
    CHECK(w.skipped() == 0);
    CHECK(w.track_count() == 1);
    CHECK(smf_read(w.bytes()).tracks[0].events.empty());
  }
}

TEST_CASE("smf_read reads what other writers produce", "[midi][smf]") {
  SECTION("running status, also across a meta event") {
    const auto f = smf_read(file_of(
        {0x00, 0x90, 60, 100, 0x60, 60, 0, 0x00, 0xFF, 0x01, 0x01, 'x', 0x10, 62, 100, 0x00, 0xFF, 0x2F, 0x00}));
    REQUIRE(f.tracks.size() == 1);
    CHECK(f.tracks[0].events == std::vector<smf_event>{{0, message::note_on(0, 60, 100)},
                                                       {96, message::note_on(0, 60, 0)},
                                                       {112, message::note_on(0, 62, 100)}});
    REQUIRE(f.tracks[0].meta.size() == 1);
    CHECK(f.tracks[0].meta[0].tick == 96);
    CHECK(f.tempo_map().empty());
  }
  SECTION("sysex split into F0 and F7 packets") {
    const auto f =
        smf_read(file_of({0x00, 0xF0, 0x02, 0x01, 0x02, 0x10, 0xF7, 0x02, 0x03, 0xF7, 0x00, 0xFF, 0x2F, 0x00}));
    CHECK(f.tracks[0].events == std::vector<smf_event>{{16, message::sysex(sysex_bytes({0xF0, 1, 2, 3, 0xF7}))}});
  }
  SECTION("F7 escape holding a realtime message") {
    const auto f = smf_read(file_of({0x00, 0xF7, 0x01, 0xFA, 0x00, 0xFF, 0x2F, 0x00}));
    CHECK(f.tracks[0].events == std::vector<smf_event>{{0, message::start()}});
  }
  SECTION("unknown chunks are skipped, a missing end of track is accepted, trailing bytes ignored") {
    auto f = header(1, 2, 480);
    for (const auto& c : {chunk("XFIH", {1, 2, 3}), chunk("MTrk", {0x00, 0xC0, 0x05}),
                          chunk("MTrk", {0x00, 0xFF, 0x2F, 0x00, 0x99}), bytes{0xDE, 0xAD}})
      f.insert(f.end(), c.begin(), c.end());
    const auto r = smf_read(f);
    REQUIRE(r.tracks.size() == 2);
    CHECK(r.tracks[0].events == std::vector<smf_event>{{0, message::program_change(0, 5)}});
    CHECK(r.tracks[1].events.empty());
  }
  SECTION("SMPTE division") {
    const auto f = smf_read(file_of({0x00, 0xFF, 0x2F, 0x00}, 0xE728));  // -25 fps, 40 ticks a frame
    CHECK(f.is_smpte());
    CHECK(f.ticks_per_quarter() == 0);
  }
}

TEST_CASE("smf_read rejects malformed input with the offset", "[midi][smf]") {
  auto offset_of = [](const bytes& b) -> long {
    try {
      smf_read(b);
    } catch (const smf_error& e) {
      return long(e.offset());
    }
    return -1;
  };
  const bytes eot{0x00, 0xFF, 0x2F, 0x00};
  SECTION("not a MIDI file") {
    CHECK(offset_of({}) == 0);
    CHECK(offset_of({'R', 'I', 'F', 'F', 0, 0, 0, 6, 0, 0, 0, 1, 0, 96}) == 0);
    CHECK(offset_of({'M', 'T', 'h', 'd', 0, 0, 0, 6, 0, 0}) == 0);
    CHECK_THROWS_WITH(smf_read(bytes{1, 2, 3}), ContainsSubstring("byte 0") && ContainsSubstring("MThd"));
  }
  SECTION("bad header fields") {
    auto h = header(3, 1, 96);
    CHECK(offset_of(h) == 8);
    CHECK(offset_of(header(0, 2, 96)) == 10);
    CHECK(offset_of(header(1, 1, 0)) == 12);
    h = header(0, 1, 96);
    h[7] = 5;  // header length below 6
    CHECK(offset_of(h) == 4);
    h[7] = 200;  // header length past the end
    CHECK(offset_of(h) == 4);
  }
  SECTION("missing tracks, chunk past the end") {
    CHECK(offset_of(header(1, 2, 96)) == 14);
    auto f = file_of(eot);
    f[21] = 5;  // track length 5, 4 bytes present
    CHECK(offset_of(f) == 18);
  }
  SECTION("bad track events") {
    CHECK(offset_of(file_of({0x00, 60, 100})) == 23);                             // data byte, no running status
    CHECK(offset_of(file_of({0x00, 0xF8, 0x00, 0xFF, 0x2F, 0x00})) == 23);        // realtime is not an SMF event
    CHECK(offset_of(file_of({0x00, 0xF2, 0x01, 0x00})) == 23);                    // nor system common
    CHECK(offset_of(file_of({0x00, 0x90, 0x90, 0x40})) == 24);                    // status where data expected
    CHECK(offset_of(file_of({0x00, 0x90, 0x40})) == 25);                          // note cut by the chunk end
    CHECK(offset_of(file_of({0x81, 0x81, 0x81, 0x81, 0x01, 0x90, 1, 1})) == 22);  // 5-byte VLQ
    CHECK(offset_of(file_of({0x00, 0xFF, 0x01, 0x05, 'a', 'b'})) == 26);          // meta past the chunk end
    CHECK(offset_of(file_of({0x00, 0xFF, 0x51, 0x02, 0x07, 0xA1})) == 23);        // tempo length 2
    CHECK(offset_of(file_of({0x00, 0xFF, 0x80, 0x00})) == 24);                    // meta type >= 0x80
    CHECK(offset_of(file_of({0x00, 0xF0, 0x02, 0x01, 0x02, 0x00, 0xFF, 0x2F, 0x00})) == 23);  // sysex never ends
    CHECK(offset_of(file_of({0x00, 0xF0, 0x02, 0x90, 0xF7})) == 23);                          // status byte in a sysex
    CHECK(offset_of(file_of({0x00, 0xF0, 0x83, 0x00, 0x01})) == 26);  // sysex length 384 past the end
  }
  SECTION("errors are runtime_errors with a readable message") {
    CHECK_THROWS_AS(smf_read(file_of({0x00, 60})), std::runtime_error);
    CHECK_THROWS_WITH(smf_read(file_of({0x00, 60})),
                      ContainsSubstring("at byte 23") && ContainsSubstring("running status"));
  }
}

TEST_CASE("smf_read never crashes on garbage", "[midi][smf][fuzz]") {
  smf_writer w{96};
  for (int i = 0; i < 50; ++i) {
    w.add_at_tick(std::uint64_t(i * 37), message::note_on(i % 16, i, 100), i % 3);
    w.add_at_tick(std::uint64_t(i * 37 + 5), message::control_change(0, i, i), i % 3);
  }
  w.add_at_tick(3, message::sysex(sysex_bytes({0xF0, 1, 2, 3, 0xF7})), 1);
  const auto valid = w.bytes(1);
  std::mt19937 rng{42};
  std::size_t parsed = 0, rejected = 0;
  bool only_smf_errors = true;
  auto attempt = [&](const bytes& b) {
    try {
      smf_read(b);
      ++parsed;
    } catch (const smf_error&) {
      ++rejected;
    } catch (...) {
      only_smf_errors = false;
    }
  };
  SECTION("every truncation of a valid file") {
    for (std::size_t n = 0; n < valid.size(); ++n) attempt(bytes(valid.begin(), valid.begin() + std::ptrdiff_t(n)));
    CHECK(only_smf_errors);
    CHECK(rejected > 0);
  }
  SECTION("random byte mutations of a valid file") {
    std::uniform_int_distribution<std::size_t> pos(0, valid.size() - 1);
    std::uniform_int_distribution<int> val(0, 255), count(1, 8);
    for (int i = 0; i < 20'000; ++i) {
      auto b = valid;
      for (int k = count(rng); k > 0; --k) b[pos(rng)] = std::uint8_t(val(rng));
      attempt(b);
    }
    CHECK(only_smf_errors);
    CHECK(parsed > 0);
    CHECK(rejected > 0);
  }
  SECTION("random bytes behind a valid header") {
    std::uniform_int_distribution<int> val(0, 255), len(0, 400);
    for (int i = 0; i < 20'000; ++i) {
      bytes body(std::size_t(len(rng)));
      for (auto& x : body) x = std::uint8_t(val(rng));
      attempt(file_of(body));
    }
    CHECK(only_smf_errors);
  }
}

TEST_CASE("smf I/O errors name the path", "[midi][smf]") {
  const smf_writer w;
  const auto missing = std::filesystem::path("/nonexistent-tactus-dir") / "x.mid";
  SECTION("writing into a directory that does not exist") {
    try {
      w.write(missing);
      FAIL("no exception");
    } catch (const std::system_error& e) {
      CHECK(e.code() == std::errc::no_such_file_or_directory);
      CHECK_THAT(e.what(), ContainsSubstring("/nonexistent-tactus-dir/x.mid") && ContainsSubstring("cannot create"));
    }
  }
  SECTION("writing to a full device") {
    if (!std::filesystem::exists("/dev/full"))
      TACTUS_SKIP("no /dev/full on this machine: writing to a full device is untested");
    try {
      w.write("/dev/full");
      FAIL("no exception");
    } catch (const std::system_error& e) {
      CHECK(e.code() == std::errc::no_space_on_device);
      CHECK_THAT(e.what(), ContainsSubstring("/dev/full"));
    }
  }
  SECTION("reading a file that does not exist") {
    CHECK_THROWS_AS(smf_read(missing), std::system_error);
    CHECK_THROWS_WITH(smf_read(missing), ContainsSubstring("/nonexistent-tactus-dir/x.mid"));
  }
  SECTION("reading a directory") {
    CHECK_THROWS_AS(smf_read(std::filesystem::temp_directory_path()), std::system_error);
  }
}

// Issue 12, item 4: smf_read(path) read without a bound (/dev/zero grew it to 1 GB before
// bad_alloc). It reads what the chunks declare, at most max_bytes, and names the limit.
namespace {
void write_file(const std::filesystem::path& p, const bytes& b) {
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}
}  // namespace

TEST_CASE("smf_read of a path is bounded and names its limit", "[midi][smf]") {
  const auto track = chunk("MTrk", {0x00, 0x90, 60, 100, 0x60, 0x80, 60, 0, 0x00, 0xFF, 0x2F, 0x00});
  auto file = header(0, 1, 96);
  file.insert(file.end(), track.begin(), track.end());
  temp_file tmp;
  SECTION("a file within the limit reads as its bytes do, trailing bytes unread") {
    auto with_tail = file;
    with_tail.insert(with_tail.end(), 100000, 0xAB);  // not part of any track: ignored, not read
    write_file(tmp.path, with_tail);
    const auto f = smf_read(tmp.path, file.size());
    REQUIRE(f.tracks.size() == 1);
    CHECK(f.tracks[0].events == smf_read(std::span<const std::uint8_t>(file)).tracks[0].events);
    CHECK(f.tracks[0].events.size() == 2);
  }
  SECTION("one byte over the limit") {
    write_file(tmp.path, file);
    try {
      smf_read(tmp.path, file.size() - 1);
      FAIL("no exception");
    } catch (const tactus::midi::smf_too_large& e) {
      CHECK(e.limit() == file.size() - 1);
      CHECK(e.offset() == 14 + 8);  // the track chunk's body is what no longer fits
      CHECK_THAT(e.what(), ContainsSubstring(tmp.path.string()) &&
                               ContainsSubstring("limit of " + std::to_string(file.size() - 1) + " bytes"));
    }
  }
  SECTION("a chunk declaring 4 GiB is refused from its length") {
    auto huge = header(1, 2, 96);
    huge.insert(huge.end(), {'M', 'T', 'r', 'k', 0xFF, 0xFF, 0xFF, 0xF0, 0x00});
    write_file(tmp.path, huge);
    CHECK_THROWS_AS(smf_read(tmp.path), tactus::midi::smf_too_large);
    CHECK_THROWS_WITH(smf_read(tmp.path),
                      ContainsSubstring("limit of " + std::to_string(tactus::midi::smf_default_max_bytes)));
  }
  SECTION("/dev/zero fails at once") {
    if (!std::filesystem::exists("/dev/zero")) TACTUS_SKIP("no /dev/zero on this machine");
    CHECK_THROWS_WITH(smf_read("/dev/zero"), ContainsSubstring("no MThd header"));
  }
  SECTION("a pipe that never ends after a valid start") {
    // A writer that keeps sending a track's bytes: the read stops at the limit, not at the end.
    const auto fifo = tmp.path.string() + ".fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    std::thread writer([&] {
      std::FILE* w = std::fopen(fifo.c_str(), "wb");
      if (!w) return;
      auto start = header(0, 1, 96);
      start.insert(start.end(), {'M', 'T', 'r', 'k', 0x00, 0x10, 0x00, 0x00});  // a 1 MiB track
      std::fwrite(start.data(), 1, start.size(), w);
      const bytes notes(4096, 0x00);
      while (std::fwrite(notes.data(), 1, notes.size(), w) == notes.size()) {
      }
      std::fclose(w);  // the reader closed its end: EPIPE (SIGPIPE is ignored below)
    });
    struct sigaction ignore {};
    struct sigaction before {};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ignore, &before);
    CHECK_THROWS_AS(smf_read(fifo, 64 * 1024), tactus::midi::smf_too_large);
    writer.join();
    ::sigaction(SIGPIPE, &before, nullptr);
    std::filesystem::remove(fifo);
  }
}

namespace {

// The tempo (us a quarter) a file's own map has in force at each time: that of the last change
// whose time is at or before it. The changes' times are computed once.
struct file_tempo {
  explicit file_tempo(const tactus::midi::smf_file& f) : map(f.tempo_map()) {
    for (const auto& c : map) at.push_back(f.time_at(c.tick));
  }
  std::chrono::microseconds operator()(std::chrono::nanoseconds t) const {
    const auto i = std::upper_bound(at.begin(), at.end(), t) - at.begin();
    return i == 0 ? 500'000us : map[std::size_t(i - 1)].quarter;
  }
  std::vector<tactus::midi::smf_tempo_change> map;
  std::vector<std::chrono::nanoseconds> at;
};

// |back - t| is at most half a tick at `quarter` (plus the half nanosecond time_at rounds to).
bool within_half_tick(std::chrono::nanoseconds back, std::chrono::nanoseconds t, std::chrono::microseconds quarter,
                      int tpq) {
  const auto err = back > t ? back - t : t - back;
  return err.count() * 2 * tpq <= quarter.count() * 1000 + tpq;
}

}  // namespace

TEST_CASE("smf_writer records tempo changes and reads back the times it recorded", "[midi][smf][tempo]") {
  using tactus::bpm;
  // 120 -> 97.3 -> 174 -> 61.5 bpm, the changes at times that fall between ticks.
  smf_writer w{480, 500'000us};
  w.set_tempo(3'700'000'123ns, bpm{97.3});
  w.set_tempo(9'123'456'789ns, bpm{174});
  w.set_tempo(14'000'000'001ns, bpm{61.5});
  REQUIRE(w.tempo_map().size() == 4);
  CHECK(w.tempo_map()[1].quarter == 616'650us);  // 60e6 / 97.3 = 616649.5, rounded
  CHECK(w.tempo_map()[2].quarter == 344'828us);
  CHECK(w.tempo_map()[3].quarter == 975'610us);
  CHECK(w.tempo_map()[1].tick == 3552);  // 3.7 s at 120 bpm: 7.4 quarters

  // An event every 5 to 7 ms for 20 s on two tracks, added in a shuffled order: more than two
  // ticks apart at any of these tempos, so tick order is time order.
  std::mt19937 rng{7};
  std::vector<std::chrono::nanoseconds> times;
  for (std::int64_t k = 0; k < 4000; ++k)
    times.push_back(
        std::chrono::nanoseconds(k * 5'000'000 + std::uniform_int_distribution<std::int64_t>(0, 2'000'000)(rng)));
  auto msg = [](std::size_t k) { return message::note_on(int(k % 16), int(k % 128), int(1 + k % 127)); };
  std::vector<std::size_t> order(times.size());
  for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::shuffle(order.begin(), order.end(), rng);
  for (auto k : order) w.add(times[k], msg(k), int(k % 2));

  auto check_file = [&](const tactus::midi::smf_file& f, const std::vector<smf_event>& events,
                        const std::vector<std::size_t>& index) {
    REQUIRE(events.size() == index.size());
    const file_tempo tempo_at(f);
    bool all_within = true, all_match = true;
    for (std::size_t i = 0; i < events.size(); ++i) {
      const auto k = index[i];
      all_match = all_match && events[i].msg == msg(k) && events[i].tick == w.to_tick(times[k]);
      all_within = all_within && within_half_tick(f.time_at(events[i].tick), times[k], tempo_at(times[k]), 480);
    }
    CHECK(all_match);
    CHECK(all_within);
  };

  SECTION("format 1: the changes in the conductor track, every event back within half a tick") {
    const auto f = smf_read(w.bytes(1));
    REQUIRE(f.tracks.size() == 2);
    CHECK(f.tempo_map() == w.tempo_map());
    CHECK(f.tracks[1].meta.empty());
    for (std::size_t track = 0; track < 2; ++track) {
      std::vector<std::size_t> index;
      for (std::size_t k = track; k < times.size(); k += 2) index.push_back(k);
      check_file(f, f.tracks[track].events, index);
    }
  }
  SECTION("format 0: the same, merged") {
    const auto f = smf_read(w.bytes(0));
    REQUIRE(f.tracks.size() == 1);
    CHECK(f.tempo_map() == w.tempo_map());
    std::vector<std::size_t> index(times.size());
    for (std::size_t k = 0; k < index.size(); ++k) index[k] = k;
    check_file(f, f.tracks[0].events, index);
  }
  SECTION("each change lands within half a tick (of the tempo before it) of its time") {
    const auto f = smf_read(w.bytes());
    const auto map = f.tempo_map();
    CHECK(within_half_tick(f.time_at(map[1].tick), 3'700'000'123ns, map[0].quarter, 480));
    CHECK(within_half_tick(f.time_at(map[2].tick), 9'123'456'789ns, map[1].quarter, 480));
    CHECK(within_half_tick(f.time_at(map[3].tick), 14'000'000'001ns, map[2].quarter, 480));
  }
  SECTION("events added before the changes were set land on the same ticks") {
    smf_writer early{480, 500'000us};
    for (auto k : order) early.add(times[k], msg(k), int(k % 2));
    early.set_tempo(3'700'000'123ns, bpm{97.3});
    early.set_tempo(9'123'456'789ns, bpm{174});
    early.set_tempo(14'000'000'001ns, bpm{61.5});
    CHECK(early.bytes() == w.bytes());
  }
}

TEST_CASE("smf_writer: a thousand tempo changes and no drift", "[midi][smf][tempo]") {
  // A tempo change every 0.3 to 1.3 s for about 13 minutes, 40..240 bpm to the microsecond,
  // 7 ticks a quarter so a tick is long and its rounding large: an error of half a tick per
  // change, if it were kept, would add up to minutes. Every event still reads back within half
  // a tick.
  std::mt19937 rng{1234};
  smf_writer w{7, 500'000us};
  std::vector<std::chrono::nanoseconds> times;
  std::chrono::nanoseconds t{0};
  for (int change = 0; change < 1000; ++change) {
    t += std::chrono::nanoseconds(std::uniform_int_distribution<std::int64_t>(300'000'000, 1'300'000'000)(rng));
    w.set_tempo(t, std::chrono::microseconds(std::uniform_int_distribution<std::int64_t>(250'000, 1'500'000)(rng)));
    times.push_back(t + std::chrono::nanoseconds(std::uniform_int_distribution<std::int64_t>(0, 299'999'999)(rng)));
  }
  for (auto at : times) w.add(at, message::note_on(0, 60, 100));
  const auto f = smf_read(w.bytes());
  CHECK(f.tempo_map().size() == 1001);
  const file_tempo tempo_at(f);
  bool all_within = true;
  for (std::size_t i = 0; i < times.size(); ++i)
    all_within = all_within && within_half_tick(f.time_at(f.tracks[0].events[i].tick), times[i], tempo_at(times[i]), 7);
  CHECK(all_within);
}

TEST_CASE("smf_writer writes the exact bytes of a tempo change", "[midi][smf][tempo]") {
  smf_writer w{96, 500'000us};
  w.set_tempo(1s, 250'000us);               // 1 s at 120 bpm, 96 ticks a quarter: tick 192
  w.add(1500ms, message::note_off(0, 60));  // 192 + 0.5 s at 240 bpm: tick 384
  w.add(1s, message::note_on(0, 62, 100));  // on the change's tick: after the change
  w.add(0s, message::note_on(0, 60, 100));
  const bytes expected{
      'M',  'T',  'h',  'd',  0x00, 0x00, 0x00, 0x06,  // header chunk, length 6
      0x00, 0x01, 0x00, 0x01, 0x00, 0x60,              // format 1, 1 track, 96 ticks per quarter
      'M',  'T',  'r',  'k',  0x00, 0x00, 0x00, 0x20,  // track chunk, 32 bytes
      0x00, 0xFF, 0x51, 0x03, 0x07, 0xA1, 0x20,        // tempo 500000 us at tick 0
      0x00, 0x90, 0x3C, 0x64,                          // note on at tick 0
      0x81, 0x40, 0xFF, 0x51, 0x03, 0x03, 0xD0, 0x90,  // delta 192: tempo 250000 us
      0x00, 0x90, 0x3E, 0x64,                          // note on, same tick
      0x81, 0x40, 0x80, 0x3C, 0x00,                    // delta 192: note off
      0x00, 0xFF, 0x2F, 0x00,                          // end of track
  };
  CHECK(w.bytes() == expected);
  const auto f = smf_read(expected);
  CHECK(f.time_at(192) == 1s);
  CHECK(f.time_at(384) == 1500ms);
  CHECK(f.time_at(96) == 500ms);

  SECTION("a change after the last event is written after it, in the first track only") {
    w.set_tempo(2s, 1'000'000us);  // tick 384 + 0.5 s at 240 bpm: 576
    w.add(0s, message::note_on(1, 1, 1), 1);
    const auto g = smf_read(w.bytes());
    REQUIRE(g.tracks.size() == 2);
    CHECK(g.tempo_map().back() == tactus::midi::smf_tempo_change{576, 1'000'000us});
    CHECK(g.tracks[0].meta.back().tick == 576);
    CHECK(g.tracks[1].meta.empty());
    CHECK(g.time_at(576 + 96) == 3s);
  }
  SECTION("tick-based changes and events") {
    smf_writer t{96, 500'000us};
    t.set_tempo_at_tick(192, 250'000us);
    t.add_at_tick(0, message::note_on(0, 60, 100));
    t.add_at_tick(192, message::note_on(0, 62, 100));
    t.add(1500ms, message::note_off(0, 60));
    CHECK(t.bytes() == expected);
  }
}

TEST_CASE("smf_writer set_tempo: at 0, on one tick, out of order, out of range", "[midi][smf][tempo]") {
  using tactus::bpm;
  auto tempo_events = [](const bytes& b) {
    std::size_t n = 0;
    for (const auto& t : smf_read(b).tracks)
      for (const auto& m : t.meta) n += m.type == 0x51;
    return n;
  };
  smf_writer w{480, 500'000us};
  SECTION("at time 0 it replaces the initial tempo: one FF 51 at tick 0") {
    w.set_tempo(0ns, bpm{90});
    CHECK(w.quarter() == 666'667us);
    CHECK(tempo_events(w.bytes()) == 1);
    CHECK(smf_read(w.bytes()).tempo_map() == std::vector<tactus::midi::smf_tempo_change>{{0, 666'667us}});
    w.add(666'667us, message::note_on(0, 1, 1));
    CHECK(smf_read(w.bytes()).tracks[0].events[0].tick == 480);
  }
  SECTION("on the tick of the previous change it replaces it; back to the tempo before, it removes it") {
    w.set_tempo(1s, 400'000us);
    w.set_tempo(1s + 100us, 300'000us);  // 0.1 ms: under half a tick (0.52 ms at 120 bpm)
    CHECK(w.tempo_map() == std::vector<tactus::midi::smf_tempo_change>{{0, 500'000us}, {960, 300'000us}});
    w.set_tempo(1s + 200us, 500'000us);
    CHECK(w.tempo_map().size() == 1);
    CHECK(tempo_events(w.bytes()) == 1);
  }
  SECTION("a change to the tempo in force writes nothing") {
    w.set_tempo(1s, bpm{120});
    w.set_tempo(2s, 500'000us);
    CHECK(w.tempo_map().size() == 1);
  }
  SECTION("times must not decrease: the error names both") {
    w.set_tempo(2s, 400'000us);
    CHECK_THROWS_AS(w.set_tempo(1s, 300'000us), std::invalid_argument);
    CHECK_THROWS_WITH(w.set_tempo(1500ms, 300'000us),
                      ContainsSubstring("1.500000000 s") && ContainsSubstring("2.000000000 s"));
    CHECK_NOTHROW(w.set_tempo(2s, 300'000us));  // the same time is fine: it replaces
    CHECK(w.tempo_map().size() == 2);
    CHECK_THROWS_AS(w.set_tempo_at_tick(1919, 300'000us), std::invalid_argument);
    CHECK_THROWS_WITH(w.set_tempo_at_tick(100, 300'000us),
                      ContainsSubstring("tick 100") && ContainsSubstring("tick 1920"));
    w.set_tempo_at_tick(2000, 250'000us);  // 80 ticks at 0.3 s a quarter: 2.05 s
    CHECK_THROWS_AS(w.set_tempo(2049ms, 400'000us), std::invalid_argument);
    CHECK_NOTHROW(w.set_tempo(2050ms, 400'000us));
  }
  SECTION("ranges as the constructor's") {
    CHECK_THROWS_AS(w.set_tempo(1s, 0us), std::invalid_argument);
    CHECK_THROWS_AS(w.set_tempo(1s, 16'777'216us), std::invalid_argument);
    CHECK_THROWS_AS(w.set_tempo(1s, bpm{3.5}), std::invalid_argument);
    CHECK_NOTHROW(w.set_tempo(1s, bpm{3.6}));
    CHECK_THROWS_AS(w.set_tempo(-1ns, 300'000us), std::out_of_range);
  }
  SECTION("clear() keeps the tempo at tick 0 and forgets the changes after it") {
    w.set_tempo(0ns, bpm{100});
    w.set_tempo(5s, bpm{50});
    w.clear();
    CHECK(w.tempo_map() == std::vector<tactus::midi::smf_tempo_change>{{0, 600'000us}});
    CHECK_NOTHROW(w.set_tempo(1s, bpm{50}));
  }
}

TEST_CASE("smf_writer maps a time through the tempo segment it falls in, whatever the order of add()",
          "[midi][smf][tempo]") {
  smf_writer w{480, 500'000us};              // 120 bpm
  w.add(2500ms, message::note_on(0, 3, 1));  // added before the changes it follows
  w.set_tempo(1s, 1'000'000us);              // 60 bpm from tick 960
  w.set_tempo(2s, 250'000us);                // 240 bpm from tick 1440
  w.add(1500ms, message::note_on(0, 2, 1));  // in the middle segment, added after the last change
  w.add(500ms, message::note_on(0, 1, 1));   // in the first
  CHECK(w.to_tick(500ms) == 480);
  CHECK(w.to_tick(1s) == 960);
  CHECK(w.to_tick(1500ms) == 1200);
  CHECK(w.to_tick(2s) == 1440);
  CHECK(w.to_tick(2500ms) == 2400);
  const auto f = smf_read(w.bytes());
  CHECK(f.tracks[0].events == std::vector<smf_event>{{480, message::note_on(0, 1, 1)},
                                                     {1200, message::note_on(0, 2, 1)},
                                                     {2400, message::note_on(0, 3, 1)}});
  for (auto t : {500ms, 1000ms, 1500ms, 2000ms, 2500ms}) CHECK(f.time_at(w.to_tick(t)) == t);
}

TEST_CASE("smf_file::time_at", "[midi][smf][tempo]") {
  SECTION("no tempo event: 120 bpm") {
    const auto f = smf_read(file_of({0x00, 0xFF, 0x2F, 0x00}, 96));
    CHECK(f.time_at(0) == 0ns);
    CHECK(f.time_at(96) == 500ms);
    CHECK(f.time_at(1) == 5'208'333ns);  // 500 ms / 96 = 5208333.3 ns
    CHECK(f.time_at(2) == 10'416'667ns);
  }
  SECTION("two changes on one tick: the last holds") {
    const auto f = smf_read(file_of({0x60, 0xFF, 0x51, 0x03, 0x0F, 0x42, 0x40,  // tick 96: 1 s a quarter
                                     0x00, 0xFF, 0x51, 0x03, 0x03, 0xD0, 0x90,  // tick 96: 0.25 s a quarter
                                     0x00, 0xFF, 0x2F, 0x00},
                                    96));
    CHECK(f.time_at(96) == 500ms);
    CHECK(f.time_at(192) == 750ms);
  }
  SECTION("SMPTE divisions") {
    CHECK(smf_read(file_of({0x00, 0xFF, 0x2F, 0x00}, 0xE728)).time_at(1000) == 1s);      // 25 fps x 40: 1 ms a tick
    CHECK(smf_read(file_of({0x00, 0xFF, 0x2F, 0x00}, 0xE364)).time_at(3000) == 1001ms);  // 29.97 fps x 100
    CHECK_THROWS_AS(smf_read(file_of({0x00, 0xFF, 0x2F, 0x00}, 0xE700)).time_at(1), std::domain_error);
  }
  SECTION("beyond 2^63 ns") {
    const auto f = smf_read(file_of({0x00, 0xFF, 0x51, 0x03, 0xFF, 0xFF, 0xFF, 0x00, 0xFF, 0x2F, 0x00}, 1));
    CHECK(f.time_at(1'000'000) == std::chrono::nanoseconds(16'777'215'000'000'000));
    CHECK_THROWS_AS(f.time_at(std::uint64_t(1) << 40), std::out_of_range);
  }
}
