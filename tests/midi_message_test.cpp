// SPDX-License-Identifier: BSL-1.0
#include <tactus/midi/message.hpp>

#include "support/catch.hpp"

#include <array>
#include <cstdint>
#include <stdexcept>
#include <vector>

// tactus::midi::message: factories, their range checks, from_bytes validation, to_string.

using tactus::midi::message;
using tactus::midi::message_type;
using bytes = std::vector<std::uint8_t>;
using Catch::Matchers::ContainsSubstring;

namespace {
bytes raw(const message& m) { return bytes(m.bytes().begin(), m.bytes().end()); }
}  // namespace

TEST_CASE("message factories encode the MIDI bytes", "[midi][message]") {
  SECTION("channel voice") {
    CHECK(raw(message::note_on(0, 60, 100)) == bytes{0x90, 60, 100});
    CHECK(raw(message::note_on(15, 127, 127)) == bytes{0x9F, 127, 127});
    CHECK(raw(message::note_off(9, 36)) == bytes{0x89, 36, 0});
    CHECK(raw(message::poly_pressure(1, 2, 3)) == bytes{0xA1, 2, 3});
    CHECK(raw(message::control_change(2, 7, 64)) == bytes{0xB2, 7, 64});
    CHECK(raw(message::program_change(3, 5)) == bytes{0xC3, 5});
    CHECK(raw(message::channel_pressure(4, 90)) == bytes{0xD4, 90});
  }
  SECTION("pitch bend is signed, centre 0x2000, LSB first") {
    CHECK(raw(message::pitch_bend(0, 0)) == bytes{0xE0, 0x00, 0x40});
    CHECK(raw(message::pitch_bend(0, -8192)) == bytes{0xE0, 0x00, 0x00});
    CHECK(raw(message::pitch_bend(0, 8191)) == bytes{0xE0, 0x7F, 0x7F});
    CHECK(message::pitch_bend(5, -1234).pitch_bend_value() == -1234);
  }
  SECTION("system common and realtime") {
    CHECK(raw(message::song_position(0x3FFF)) == bytes{0xF2, 0x7F, 0x7F});
    CHECK(message::song_position(300).song_position_value() == 300);
    CHECK(raw(message::song_select(9)) == bytes{0xF3, 9});
    CHECK(raw(message::clock()) == bytes{0xF8});
    CHECK(raw(message::start()) == bytes{0xFA});
    CHECK(raw(message::continue_()) == bytes{0xFB});
    CHECK(raw(message::stop()) == bytes{0xFC});
    CHECK(raw(message::active_sensing()) == bytes{0xFE});
    CHECK(raw(message::reset()) == bytes{0xFF});
    CHECK(message::clock().is_realtime());
    CHECK_FALSE(message::song_select(1).is_realtime());
  }
  SECTION("sysex") {
    const bytes sx{0xF0, 0x7E, 0x7F, 0x06, 0x01, 0xF7};
    const auto m = message::sysex(sx);
    CHECK(raw(m) == sx);
    CHECK(m.type() == message_type::sysex);
    CHECK(m.size() == 6);
    CHECK(m.data1() == -1);
    CHECK(m.channel() == -1);
  }
}

TEST_CASE("message accessors", "[midi][message]") {
  const auto on = message::note_on(9, 36, 100);
  CHECK(on.type() == message_type::note_on);
  CHECK(on.channel() == 9);
  CHECK(on.key() == 36);
  CHECK(on.velocity() == 100);
  CHECK(on.is_note_on());
  CHECK_FALSE(on.is_note_off());
  CHECK(on.is_channel_voice());

  SECTION("a note-on with velocity 0 is a note-off") {
    const auto off = message::note_on(0, 60, 0);
    CHECK_FALSE(off.is_note_on());
    CHECK(off.is_note_off());
    CHECK(message::note_off(0, 60, 64).is_note_off());
  }
  SECTION("default message is empty") {
    const message m;
    CHECK(m.empty());
    CHECK(m.status() == 0);
    CHECK(m.type() == message_type::undefined);
    CHECK(m.to_string() == "empty");
  }
  SECTION("equality compares bytes") {
    CHECK(message::note_on(0, 60, 100) == message::note_on(0, 60, 100));
    CHECK_FALSE(message::note_on(0, 60, 100) == message::note_on(1, 60, 100));
    CHECK_FALSE(message::note_on(0, 60, 0) == message::note_off(0, 60, 0));
  }
}

TEST_CASE("message factories reject out-of-range arguments", "[midi][message]") {
  SECTION("channel") {
    CHECK_THROWS_AS(message::note_on(16, 60, 100), std::invalid_argument);
    CHECK_THROWS_AS(message::note_on(-1, 60, 100), std::invalid_argument);
    CHECK_THROWS_AS(message::program_change(16, 0), std::invalid_argument);
  }
  SECTION("data bytes") {
    CHECK_THROWS_AS(message::note_on(0, 128, 100), std::invalid_argument);
    CHECK_THROWS_AS(message::note_on(0, 60, 128), std::invalid_argument);
    CHECK_THROWS_AS(message::control_change(0, -1, 0), std::invalid_argument);
    CHECK_THROWS_AS(message::channel_pressure(0, 200), std::invalid_argument);
    CHECK_THROWS_AS(message::song_select(128), std::invalid_argument);
  }
  SECTION("pitch bend and song position") {
    CHECK_THROWS_AS(message::pitch_bend(0, 8192), std::invalid_argument);
    CHECK_THROWS_AS(message::pitch_bend(0, -8193), std::invalid_argument);
    CHECK_THROWS_AS(message::song_position(16384), std::invalid_argument);
    CHECK_THROWS_AS(message::song_position(-1), std::invalid_argument);
  }
  SECTION("the error names the value and range") {
    CHECK_THROWS_WITH(message::note_on(0, 200, 1), ContainsSubstring("200") && ContainsSubstring("0..127"));
  }
  SECTION("malformed sysex") {
    CHECK_THROWS_AS(message::sysex(bytes{0xF0, 0x01}), std::invalid_argument);
    CHECK_THROWS_AS(message::sysex(bytes{0xF0, 0x80, 0xF7}), std::invalid_argument);
    CHECK_THROWS_AS(message::sysex(bytes{0x90, 60, 100}), std::invalid_argument);
  }
}

TEST_CASE("message::from_bytes accepts exactly one well-formed message", "[midi][message]") {
  auto ok = [](bytes b) { return message::from_bytes(b).has_value(); };
  SECTION("valid") {
    CHECK(ok({0x90, 60, 100}));
    CHECK(ok({0xC0, 1}));
    CHECK(ok({0xF8}));
    CHECK(ok({0xF6}));
    CHECK(ok({0xF1, 0x10}));
    CHECK(ok({0xF2, 1, 2}));
    CHECK(ok({0xF0, 0xF7}));
    CHECK(ok({0xF0, 1, 2, 3, 0xF7}));
    CHECK(raw(*message::from_bytes(bytes{0x91, 1, 2})) == bytes{0x91, 1, 2});
  }
  SECTION("wrong length") {
    CHECK_FALSE(ok({}));
    CHECK_FALSE(ok({0x90, 60}));
    CHECK_FALSE(ok({0x90, 60, 100, 1}));
    CHECK_FALSE(ok({0xC0}));
    CHECK_FALSE(ok({0xC0, 1, 2}));
    CHECK_FALSE(ok({0xF8, 0}));
  }
  SECTION("data byte with the high bit set") {
    CHECK_FALSE(ok({0x90, 0x80, 100}));
    CHECK_FALSE(ok({0x90, 60, 0xFF}));
    CHECK_FALSE(ok({0xF0, 1, 0x90, 0xF7}));
  }
  SECTION("no status, undefined status, running status") {
    CHECK_FALSE(ok({60, 100}));
    CHECK_FALSE(ok({0xF4}));
    CHECK_FALSE(ok({0xF5}));
    CHECK_FALSE(ok({0xFD}));
    CHECK_FALSE(ok({0xF7}));
  }
  SECTION("unterminated sysex") {
    CHECK_FALSE(ok({0xF0}));
    CHECK_FALSE(ok({0xF0, 1, 2}));
  }
}

TEST_CASE("message::to_string shows 1-based channels", "[midi][message]") {
  CHECK(message::note_on(0, 60, 100).to_string() == "note_on ch=1 key=60 vel=100");
  CHECK(message::note_off(9, 36).to_string() == "note_off ch=10 key=36 vel=0");
  CHECK(message::control_change(15, 7, 1).to_string() == "control_change ch=16 cc=7 value=1");
  CHECK(message::program_change(0, 5).to_string() == "program_change ch=1 program=5");
  CHECK(message::channel_pressure(0, 5).to_string() == "channel_pressure ch=1 value=5");
  CHECK(message::poly_pressure(0, 5, 6).to_string() == "poly_pressure ch=1 key=5 value=6");
  CHECK(message::pitch_bend(0, -100).to_string() == "pitch_bend ch=1 value=-100");
  CHECK(message::clock().to_string() == "clock");
  CHECK(message::continue_().to_string() == "continue");
  CHECK(message::song_position(17).to_string() == "song_position 17");
  CHECK(message::song_select(3).to_string() == "song_select 3");
  CHECK(message::sysex(bytes{0xF0, 1, 2, 3, 4, 0xF7}).to_string() == "sysex 6 bytes");
  CHECK(message::from_bytes(bytes{0xF6})->to_string() == "tune_request");
  CHECK(message::from_bytes(bytes{0xF1, 0x25})->to_string() == "mtc_quarter_frame 37");
}
