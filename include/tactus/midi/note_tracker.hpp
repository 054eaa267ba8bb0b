// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/message.hpp>

#include <array>
#include <cstddef>
#include <cstdint>

// Which notes are sounding: the bookkeeping behind "no note is ever left hanging", with no port
// inside. Feed it every message sent (track), and end_all() tells what to send to silence
// everything: a note-off for each sounding note, then All Notes Off (CC 123) and Sustain off
// (CC 64 = 0) on every channel used.
//
//     tactus::midi::note_tracker notes;
//     notes.track(tactus::midi::message::note_on(9, 36, 100));
//     notes.end_all([&](const tactus::midi::message& m) { port.send(m); });  // 89 24 00, B9 7B 00, B9 40 00
//
// midi::output, testing::recording_output and the drum machine's sound all keep one.

namespace tactus::midi {

/// Counts note-ons per (channel, key): a note-off (or a note-on with velocity 0) decrements, a
/// note-off for a key not sounding is not counted. So two note-ons then one note-off leave the
/// key open, and end_all() sends ONE note-off for it.
///
/// Thread-safe: no. Realtime-safe: yes (no allocation, no lock).
class note_tracker {
 public:
  /// Counts `m` if it is a channel voice message (note-ons and note-offs; any other channel
  /// message marks its channel as used).
  void track(const message& m) noexcept {
    if (!m.is_channel_voice()) return;
    const int ch = m.channel();
    used_ |= std::uint16_t(1u << ch);
    if (m.is_note_on()) {
      auto& n = open_[index(ch, m.key())];
      if (n < UINT16_MAX) ++n;
    } else if (m.is_note_off()) {
      auto& n = open_[index(ch, m.key())];
      if (n > 0) --n;
    }
  }

  /// How many note-ons of (channel, key) wait for a note-off.
  int open_count(int channel, int key) const noexcept {
    if (channel < 0 || channel > 15 || key < 0 || key > 127) return 0;
    return open_[index(channel, key)];
  }
  /// Number of (channel, key) pairs sounding.
  std::size_t open_notes() const noexcept {
    std::size_t n = 0;
    for (auto c : open_) n += c != 0;
    return n;
  }
  /// Whether `channel` saw a channel voice message since the last end_all().
  bool channel_used(int channel) const noexcept { return channel >= 0 && channel < 16 && (used_ >> channel) & 1u; }

  /// Calls `send(message)` with a note-off for every sounding note, then CC 123 and CC 64 = 0
  /// on each channel used, and forgets them all. If `send` throws, what was not yet sent stays
  /// tracked (a later end_all() tries again).
  template <class Send>
  void end_all(Send&& send) {
    for (int ch = 0; ch < 16; ++ch) {
      if (!channel_used(ch)) continue;
      for (int key = 0; key < 128; ++key) {
        auto& n = open_[index(ch, key)];
        if (n == 0) continue;
        send(message::note_off(ch, key));
        n = 0;
      }
      send(message::control_change(ch, 123, 0));  // All Notes Off
      send(message::control_change(ch, 64, 0));   // Sustain (damper) off
      used_ &= std::uint16_t(~(1u << ch));
    }
  }

  /// Forgets every note without sending anything (the port went away).
  void clear() noexcept {
    open_.fill(0);
    used_ = 0;
  }

 private:
  static std::size_t index(int channel, int key) noexcept { return std::size_t(channel) * 128 + std::size_t(key); }

  std::array<std::uint16_t, 16 * 128> open_{};  // note-ons not yet matched by a note-off
  std::uint16_t used_ = 0;                      // channels that saw a voice message since end_all()
};

}  // namespace tactus::midi
