// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

// One complete MIDI 1.0 message: channel voice, system common, realtime or system exclusive.
// Short messages (1 to 3 bytes) live inline and never allocate; only sysex owns a heap buffer.
// Build them with the named factories (which check their arguments), or validate raw bytes
// with message::from_bytes. This header needs nothing but the standard library.

namespace tactus::midi {

/// The kind of a message: the status byte with the channel masked off for channel messages.
enum class message_type : std::uint8_t {
  note_off = 0x80,
  note_on = 0x90,
  poly_pressure = 0xA0,
  control_change = 0xB0,
  program_change = 0xC0,
  channel_pressure = 0xD0,
  pitch_bend = 0xE0,
  sysex = 0xF0,
  mtc_quarter_frame = 0xF1,
  song_position = 0xF2,
  song_select = 0xF3,
  tune_request = 0xF6,
  sysex_end = 0xF7,
  clock = 0xF8,
  tick = 0xF9,
  start = 0xFA,
  continue_ = 0xFB,
  stop = 0xFC,
  active_sensing = 0xFE,
  reset = 0xFF,
  undefined = 0x00,
};

/// Total length in bytes of a message beginning with `status` (status included), 0 for sysex
/// (variable) and for bytes that are not a defined status (data bytes, 0xF4, 0xF5, 0xFD, 0xF7).
constexpr std::size_t message_length(std::uint8_t status) noexcept {
  if (status < 0x80) return 0;
  if (status < 0xF0) {
    const auto hi = status & 0xF0;
    return (hi == 0xC0 || hi == 0xD0) ? 2 : 3;
  }
  switch (status) {
    case 0xF1:
    case 0xF3: return 2;
    case 0xF2: return 3;
    case 0xF6:
    case 0xF8:
    case 0xF9:
    case 0xFA:
    case 0xFB:
    case 0xFC:
    case 0xFE:
    case 0xFF: return 1;
    default: return 0;  // 0xF0 (variable), 0xF4, 0xF5, 0xF7, 0xFD (undefined or not a start)
  }
}

/// True for the single-byte system realtime messages (0xF8 to 0xFF, 0xFD excepted).
constexpr bool is_realtime_status(std::uint8_t b) noexcept { return b >= 0xF8 && b != 0xFD; }

/// MIDI clock resolution: CLOCK (0xF8) messages per beat (quarter note), 24 ppqn. A Song
/// Position Pointer's sixteenth is six of them.
inline constexpr int pulses_per_beat = 24;

class message {
 public:
  /// An empty message (size() == 0); not a valid MIDI message, but a valid moved-from state.
  message() noexcept = default;

  // Factories. Channels are 0-based (0..15; MIDI channel 10 is 9). They throw
  // std::invalid_argument on out-of-range arguments: that is a programming error.
  static message note_on(int channel, int key, int velocity) { return voice(0x90, channel, key, velocity); }
  static message note_off(int channel, int key, int velocity = 0) { return voice(0x80, channel, key, velocity); }
  static message poly_pressure(int channel, int key, int pressure) { return voice(0xA0, channel, key, pressure); }
  static message control_change(int channel, int controller, int value) {
    return voice(0xB0, channel, controller, value);
  }
  static message program_change(int channel, int program) { return voice(0xC0, channel, program); }
  static message channel_pressure(int channel, int pressure) { return voice(0xD0, channel, pressure); }
  /// `value` is the signed bend, -8192..8191, 0 = centre.
  static message pitch_bend(int channel, int value) {
    check(value, -8192, 8191, "pitch bend");
    const int v = value + 8192;
    return voice(0xE0, channel, v & 0x7F, v >> 7);
  }
  /// Song Position Pointer in MIDI beats (sixteenth notes), 0..16383.
  static message song_position(int sixteenths) {
    check(sixteenths, 0, 16383, "song position");
    return message{0xF2, std::uint8_t(sixteenths & 0x7F), std::uint8_t(sixteenths >> 7)};
  }
  static message song_select(int song) {
    check(song, 0, 127, "song");
    return message{0xF3, std::uint8_t(song)};
  }
  static message clock() noexcept { return message{0xF8}; }
  static message start() noexcept { return message{0xFA}; }
  static message continue_() noexcept { return message{0xFB}; }
  static message stop() noexcept { return message{0xFC}; }
  static message active_sensing() noexcept { return message{0xFE}; }
  static message reset() noexcept { return message{0xFF}; }
  /// A complete sysex: `bytes` must begin with 0xF0, end with 0xF7, and hold only data bytes between.
  static message sysex(std::span<const std::uint8_t> bytes) {
    auto m = from_bytes(bytes);
    if (!m || m->type() != message_type::sysex) throw std::invalid_argument("tactus::midi: malformed sysex");
    return *m;
  }

  /// Validates raw bytes as exactly one complete message; std::nullopt if they are not one
  /// (wrong length, data byte >= 0x80, undefined status, sysex not closed by 0xF7...).
  /// Running status is not accepted here: the stream parser resolves it.
  static std::optional<message> from_bytes(std::span<const std::uint8_t> b) {
    if (b.empty()) return std::nullopt;
    const auto s = b[0];
    if (s == 0xF0) {
      if (b.size() < 2 || b.back() != 0xF7) return std::nullopt;
      for (std::size_t i = 1; i + 1 < b.size(); ++i)
        if (b[i] >= 0x80) return std::nullopt;
      message m;
      m.size_ = 0;
      m.long_.assign(b.begin(), b.end());
      return m;
    }
    const auto n = message_length(s);
    if (n == 0 || n != b.size()) return std::nullopt;
    for (std::size_t i = 1; i < n; ++i)
      if (b[i] >= 0x80) return std::nullopt;
    message m;
    m.size_ = static_cast<std::uint8_t>(n);
    for (std::size_t i = 0; i < n; ++i) m.short_[i] = b[i];
    return m;
  }

  /// The bytes of the message, status first.
  std::span<const std::uint8_t> bytes() const noexcept {
    return long_.empty() ? std::span<const std::uint8_t>(short_.data(), size_) : std::span<const std::uint8_t>(long_);
  }
  std::size_t size() const noexcept { return long_.empty() ? size_ : long_.size(); }
  bool empty() const noexcept { return size() == 0; }
  std::uint8_t status() const noexcept { return empty() ? 0 : bytes()[0]; }

  message_type type() const noexcept {
    const auto s = status();
    if (s < 0x80) return message_type::undefined;
    if (s < 0xF0) return static_cast<message_type>(s & 0xF0);
    return message_length(s) || s == 0xF0 ? static_cast<message_type>(s) : message_type::undefined;
  }
  bool is_channel_voice() const noexcept { return status() >= 0x80 && status() < 0xF0; }
  bool is_realtime() const noexcept { return size() == 1 && is_realtime_status(status()); }
  /// 0-based channel of a channel voice message, -1 otherwise.
  int channel() const noexcept { return is_channel_voice() ? (status() & 0x0F) : -1; }
  int data1() const noexcept { return size() > 1 && long_.empty() ? short_[1] : -1; }
  int data2() const noexcept { return size() > 2 && long_.empty() ? short_[2] : -1; }

  /// A note-on with velocity > 0 (a note-on with velocity 0 is a note-off, per the spec).
  bool is_note_on() const noexcept { return type() == message_type::note_on && data2() > 0; }
  bool is_note_off() const noexcept {
    return type() == message_type::note_off || (type() == message_type::note_on && data2() == 0);
  }
  int key() const noexcept { return data1(); }
  int velocity() const noexcept { return data2(); }
  /// Signed pitch bend, -8192..8191, for pitch_bend messages.
  int pitch_bend_value() const noexcept { return ((data2() << 7) | data1()) - 8192; }
  /// Song position in sixteenths, for song_position messages.
  int song_position_value() const noexcept { return (data2() << 7) | data1(); }

  friend bool operator==(const message& a, const message& b) noexcept {
    const auto x = a.bytes(), y = b.bytes();
    return x.size() == y.size() && std::equal(x.begin(), x.end(), y.begin());
  }

  /// Human-readable form for monitors and logs, channels shown 1-based as on gear:
  /// "note_on ch=1 key=60 vel=100", "clock", "sysex 6 bytes".
  std::string to_string() const {
    auto num = [](int v) { return std::to_string(v); };
    const int ch = channel() + 1;
    switch (type()) {
      case message_type::note_off: return "note_off ch=" + num(ch) + " key=" + num(key()) + " vel=" + num(velocity());
      case message_type::note_on: return "note_on ch=" + num(ch) + " key=" + num(key()) + " vel=" + num(velocity());
      case message_type::poly_pressure:
        return "poly_pressure ch=" + num(ch) + " key=" + num(key()) + " value=" + num(data2());
      case message_type::control_change:
        return "control_change ch=" + num(ch) + " cc=" + num(data1()) + " value=" + num(data2());
      case message_type::program_change: return "program_change ch=" + num(ch) + " program=" + num(data1());
      case message_type::channel_pressure: return "channel_pressure ch=" + num(ch) + " value=" + num(data1());
      case message_type::pitch_bend: return "pitch_bend ch=" + num(ch) + " value=" + num(pitch_bend_value());
      case message_type::sysex: return "sysex " + num(int(size())) + " bytes";
      case message_type::mtc_quarter_frame: return "mtc_quarter_frame " + num(data1());
      case message_type::song_position: return "song_position " + num(song_position_value());
      case message_type::song_select: return "song_select " + num(data1());
      case message_type::tune_request: return "tune_request";
      case message_type::clock: return "clock";
      case message_type::tick: return "tick";
      case message_type::start: return "start";
      case message_type::continue_: return "continue";
      case message_type::stop: return "stop";
      case message_type::active_sensing: return "active_sensing";
      case message_type::reset: return "reset";
      default: return empty() ? "empty" : "undefined";
    }
  }

 private:
  explicit message(std::uint8_t s) noexcept : short_{s, 0, 0}, size_(1) {}
  message(std::uint8_t s, std::uint8_t d1) noexcept : short_{s, d1, 0}, size_(2) {}
  message(std::uint8_t s, std::uint8_t d1, std::uint8_t d2) noexcept : short_{s, d1, d2}, size_(3) {}

  static void check(int v, int lo, int hi, const char* what) {
    if (v < lo || v > hi)
      throw std::invalid_argument(std::string("tactus::midi: ") + what + " " + std::to_string(v) + " out of range " +
                                  std::to_string(lo) + ".." + std::to_string(hi));
  }
  static message voice(int status, int channel, int d1) {
    check(channel, 0, 15, "channel");
    check(d1, 0, 127, "data byte");
    return message{std::uint8_t(status | channel), std::uint8_t(d1)};
  }
  static message voice(int status, int channel, int d1, int d2) {
    check(channel, 0, 15, "channel");
    check(d1, 0, 127, "data byte");
    check(d2, 0, 127, "data byte");
    return message{std::uint8_t(status | channel), std::uint8_t(d1), std::uint8_t(d2)};
  }

  std::array<std::uint8_t, 3> short_{};
  std::uint8_t size_ = 0;
  std::vector<std::uint8_t> long_;  // sysex only; empty (no allocation) for short messages
};

}  // namespace tactus::midi
