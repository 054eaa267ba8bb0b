// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/message.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <new>
#include <optional>
#include <span>
#include <type_traits>
#include <vector>

// A streaming parser for raw MIDI 1.0 byte streams (a serial line, a DIN port, a raw file
// dump): bytes go in in chunks of any size, complete messages come out through a callback.
// It resolves running status, passes realtime bytes through from anywhere in the stream,
// reassembles sysex across chunks with bounded memory, and drops (and counts) everything
// that is not a well-formed message. It never throws on any input and never grows without
// bound. Standard library only; no Asio, no RtMidi.
//
//   tactus::midi::parser p;
//   p.feed(chunk, [&](const tactus::midi::message& m) { handle(m); });
//
// What happens to each kind of byte:
//
// - Realtime (0xF8-0xFC, 0xFE, 0xFF): emitted at once as a one-byte message, wherever it
//   falls, including between the bytes of a note or inside a sysex. It changes nothing else:
//   the message in progress and running status continue as if it were not there.
// - 0xFD (undefined realtime): counted in stats::undefined_status and otherwise ignored, like
//   a realtime byte: it interrupts nothing.
// - Channel voice status (0x80-0xEF): starts a message and becomes the running status.
//   Data bytes that arrive later without a status reuse it (running status).
// - System common (0xF1, 0xF2, 0xF3, 0xF6) and sysex start (0xF0): start a message and clear
//   running status. 0xF6 (tune request) is complete at once.
// - 0xF7 inside a sysex: completes it; the sysex is emitted with its 0xF0 and 0xF7.
// - Undefined system common status (0xF4, 0xF5) and a 0xF7 outside a sysex: counted in
//   stats::undefined_status; they clear running status, so the data bytes after them are
//   dropped as stray (the MIDI 1.0 rule: ignore an unknown status and its data).
// - Any non-realtime status byte arriving while a message (short or sysex) is incomplete:
//   the incomplete message is dropped and counted in stats::truncated, then the new status
//   byte is handled normally.
// - A data byte with no message in progress and no running status: dropped, counted (per
//   byte) in stats::stray_data.
// - A sysex longer than max_sysex_size() bytes (0xF0 and 0xF7 included): dropped and counted
//   once in stats::sysex_overflow; its remaining bytes are skipped up to the 0xF7 or the next
//   status byte. The buffer never holds more than max_sysex_size() bytes.

namespace tactus::midi {

class parser {
 public:
  /// Counters since construction or the last reset_stats(). Each dropped thing is counted in
  /// exactly one counter; none of them ever decreases on its own.
  struct stats {
    std::uint64_t messages = 0;          ///< messages emitted (all kinds, realtime and sysex included)
    std::uint64_t stray_data = 0;        ///< data bytes dropped: no status and no running status
    std::uint64_t undefined_status = 0;  ///< 0xF4, 0xF5, 0xFD and 0xF7 outside a sysex
    std::uint64_t truncated = 0;         ///< incomplete messages cut short by a new status byte
    std::uint64_t sysex_overflow = 0;    ///< sysex messages dropped for exceeding max_sysex_size()

    /// Everything dropped, in messages or bytes as counted above.
    std::uint64_t dropped() const noexcept { return stray_data + undefined_status + truncated + sysex_overflow; }
    friend bool operator==(const stats&, const stats&) = default;
  };

  /// Default bound on a sysex message, 0xF0 and 0xF7 included: 64 KiB.
  static constexpr std::size_t default_max_sysex_size = 64 * 1024;

  /// A parser with no running status and nothing in progress. `max_sysex_size` bounds the
  /// memory held for one sysex (0xF0 and 0xF7 included); values below 2 are raised to 2, the
  /// size of an empty sysex. Allocates nothing until the first sysex.
  explicit parser(std::size_t max_sysex_size = default_max_sysex_size) noexcept
      : max_sysex_(max_sysex_size < 2 ? 2 : max_sysex_size) {}

  /// Parses `bytes`, calling `on_message(const message&)` for each complete message, in stream
  /// order, before returning. Incomplete messages carry over to the next feed().
  /// Thread-safe: no (one parser per stream; it may be moved between threads between calls).
  /// Realtime-safe: yes for short messages (no allocation); a sysex allocates its buffer (up to
  /// max_sysex_size()) and the emitted message's copy.
  /// Throws: only what `on_message` throws. The byte that completed the message is consumed
  /// before the callback runs, so after an exception the parser is valid and resumes with the
  /// byte after it. Allocation failure for a sysex counts it in stats::sysex_overflow.
  template <class F>
  void feed(std::span<const std::uint8_t> bytes,
            F&& on_message) noexcept(std::is_nothrow_invocable_v<F&, const message&>) {
    for (const auto b : bytes) feed(b, on_message);
  }

  /// Parses one byte; see the span overload.
  template <class F>
  void feed(std::uint8_t b, F&& on_message) noexcept(std::is_nothrow_invocable_v<F&, const message&>) {
    if (b >= 0xF8) {  // realtime: never touches the message in progress or running status
      if (b == 0xFD) {
        ++stats_.undefined_status;
        return;
      }
      ++stats_.messages;
      const std::array<std::uint8_t, 1> one{b};
      on_message(*message::from_bytes(one));
      return;
    }
    if (b < 0x80) {
      data_byte(b, on_message);
      return;
    }
    status_byte(b, on_message);
  }

  /// Drops the message in progress (without counting it) and running status: the state after
  /// construction, e.g. after reopening a port. Counters are kept; see reset_stats().
  /// Thread-safe: no. Realtime-safe: yes (keeps the sysex buffer's capacity).
  void reset() noexcept {
    state_ = state::idle;
    running_ = 0;
    count_ = 0;
    sysex_.clear();
  }

  /// Zeroes the counters. Thread-safe: no. Realtime-safe: yes.
  void reset_stats() noexcept { stats_ = {}; }

  /// The counters. Thread-safe: no (read them on the thread that feeds).
  const stats& statistics() const noexcept { return stats_; }

  /// The sysex bound given at construction (at least 2).
  std::size_t max_sysex_size() const noexcept { return max_sysex_; }

  /// True while a message (short or sysex) is incomplete and waiting for more bytes.
  bool in_progress() const noexcept { return state_ != state::idle; }

  /// The running status (0x80-0xEF), or 0 if there is none.
  std::uint8_t running_status() const noexcept { return running_; }

 private:
  enum class state : std::uint8_t {
    idle,           // between messages (running status may still be set)
    short_message,  // collecting the data bytes of a short message
    sysex,          // collecting a sysex into sysex_
    sysex_skip,     // skipping the rest of an overflowed sysex
  };

  template <class F>
  void data_byte(std::uint8_t b, F& on_message) {
    switch (state_) {
      case state::sysex:
        // Keep room for the closing 0xF7 so a sysex of exactly max_sysex_ bytes fits.
        if (sysex_.size() + 2 > max_sysex_ || !push_sysex(b)) overflow();
        return;
      case state::sysex_skip: return;
      case state::short_message:
        data_[count_++] = b;
        if (count_ == needed_) complete(on_message);
        return;
      case state::idle:
        if (running_ == 0) {
          ++stats_.stray_data;
          return;
        }
        status_ = running_;
        needed_ = static_cast<std::uint8_t>(message_length(running_) - 1);
        data_[0] = b;
        count_ = 1;
        if (count_ == needed_) {
          complete(on_message);
        } else {
          state_ = state::short_message;
        }
        return;
    }
  }

  template <class F>
  void status_byte(std::uint8_t b, F& on_message) {
    // A non-realtime status ends whatever was in progress. An overflowed sysex was already
    // counted; an unterminated sysex or short message is truncated.
    const bool closes_sysex = b == 0xF7 && (state_ == state::sysex || state_ == state::sysex_skip);
    if (!closes_sysex) {
      if (state_ == state::short_message || state_ == state::sysex) ++stats_.truncated;
      sysex_.clear();
    }
    if (b < 0xF0) {
      state_ = state::short_message;
      running_ = status_ = b;
      needed_ = static_cast<std::uint8_t>(message_length(b) - 1);
      count_ = 0;
      return;
    }
    running_ = 0;  // system common and sysex cancel running status
    count_ = 0;
    switch (b) {
      case 0xF0:
        sysex_.clear();
        if (push_sysex(b)) {
          state_ = state::sysex;
        } else {
          overflow();
        }
        return;
      case 0xF7:
        if (state_ == state::sysex) {
          state_ = state::idle;
          if (!push_sysex(b)) {
            overflow();
            state_ = state::idle;
            return;
          }
          emit_sysex(on_message);
        } else if (state_ == state::sysex_skip) {
          state_ = state::idle;
        } else {
          state_ = state::idle;
          ++stats_.undefined_status;
        }
        return;
      case 0xF6:
        state_ = state::idle;
        status_ = b;
        needed_ = 0;
        complete(on_message);
        return;
      case 0xF1:
      case 0xF2:
      case 0xF3:
        state_ = state::short_message;
        status_ = b;
        needed_ = static_cast<std::uint8_t>(message_length(b) - 1);
        return;
      default:  // 0xF4, 0xF5
        state_ = state::idle;
        ++stats_.undefined_status;
        return;
    }
  }

  // Emits the short message in status_/data_. State is settled before the callback runs so
  // that an exception from it leaves the parser consistent.
  template <class F>
  void complete(F& on_message) {
    state_ = state::idle;
    const std::array<std::uint8_t, 3> raw{status_, data_[0], data_[1]};
    const auto m = message::from_bytes(std::span<const std::uint8_t>(raw.data(), std::size_t(needed_) + 1));
    count_ = 0;
    ++stats_.messages;
    on_message(*m);  // always engaged: status_ is defined and data_ holds only data bytes
  }

  template <class F>
  void emit_sysex(F& on_message) {
    std::optional<message> m;
    try {
      m = message::from_bytes(sysex_);
    } catch (...) {  // std::bad_alloc copying the buffer: drop it rather than throw
      sysex_.clear();
      ++stats_.sysex_overflow;
      return;
    }
    sysex_.clear();
    ++stats_.messages;
    on_message(*m);
  }

  bool push_sysex(std::uint8_t b) noexcept {
    try {
      sysex_.push_back(b);
      return true;
    } catch (...) {  // std::bad_alloc
      return false;
    }
  }

  void overflow() noexcept {
    ++stats_.sysex_overflow;
    sysex_.clear();  // capacity stays, bounded by max_sysex_
    state_ = state::sysex_skip;
  }

  std::size_t max_sysex_;
  std::vector<std::uint8_t> sysex_;
  stats stats_;
  state state_ = state::idle;
  std::uint8_t running_ = 0;  // running status, 0x80-0xEF, or 0
  std::uint8_t status_ = 0;   // status of the short message in progress
  std::uint8_t needed_ = 0;   // data bytes it needs
  std::uint8_t count_ = 0;    // data bytes it has
  std::array<std::uint8_t, 2> data_{};
};

}  // namespace tactus::midi
