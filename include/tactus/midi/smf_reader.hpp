// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/message.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

// Reading Standard MIDI Files (.mid, SMF format 0, 1 and 2): smf_read parses a file into
// tracks of (absolute tick, message) plus their meta events, and smf_file turns ticks back into
// time across the file's tempo changes. Standard library only. The writer is smf_writer.hpp;
// <tactus/midi/smf.hpp> includes both.
//
//   auto file = tactus::midi::smf_read("take.mid");
//   for (const auto& e : file.tracks[0].events) play(file.time_at(e.tick), e.msg);

namespace tactus::midi {

/// A malformed Standard MIDI File: what is wrong, and the byte offset in the file where it is.
class smf_error : public std::runtime_error {
 public:
  smf_error(std::size_t offset, const std::string& what)
      : std::runtime_error("tactus::midi: malformed MIDI file at byte " + std::to_string(offset) + ": " + what),
        offset_(offset) {}
  /// Byte offset from the start of the file.
  std::size_t offset() const noexcept { return offset_; }

 protected:
  struct whole_message {};
  smf_error(whole_message, std::size_t offset, const std::string& what) : std::runtime_error(what), offset_(offset) {}

 private:
  std::size_t offset_;
};

/// What smf_read(path) reads at most by default: 64 MiB, hundreds of times the largest MIDI files
/// in use (a dense hour-long multitrack is a few MiB). Pass a larger bound to read more.
inline constexpr std::size_t smf_default_max_bytes = std::size_t(64) << 20;

/// A file whose tracks need more bytes than smf_read(path)'s bound: offset() is where the bound
/// is crossed, limit() the bound. Nothing that large was read or allocated.
class smf_too_large : public smf_error {
 public:
  smf_too_large(const std::string& path, std::size_t offset, std::size_t limit)
      : smf_error(whole_message{}, offset,
                  "tactus::midi: '" + path + "' needs more than smf_read's limit of " + std::to_string(limit) +
                      " bytes (from byte " + std::to_string(offset) + "); pass a larger max_bytes to read it"),
        limit_(limit) {}
  /// The bound that was reached, in bytes.
  std::size_t limit() const noexcept { return limit_; }

 private:
  std::size_t limit_;
};

/// A MIDI message at an absolute tick of its track.
struct smf_event {
  std::uint64_t tick = 0;
  message msg;
  friend bool operator==(const smf_event&, const smf_event&) = default;
};

/// A meta event (FF type len data) at an absolute tick; end-of-track is not listed.
struct smf_meta_event {
  std::uint64_t tick = 0;
  std::uint8_t type = 0;  ///< 0x51 tempo, 0x58 time signature, 0x03 track name, ...
  std::vector<std::uint8_t> data;
  friend bool operator==(const smf_meta_event&, const smf_meta_event&) = default;
};

/// One MTrk chunk: its MIDI messages and its meta events, each in file order.
struct smf_track {
  std::vector<smf_event> events;
  std::vector<smf_meta_event> meta;

  /// The text of the first track name meta event (FF 03), or "".
  std::string name() const {
    for (const auto& m : meta)
      if (m.type == 0x03) return std::string(m.data.begin(), m.data.end());
    return {};
  }
};

/// A tempo change: from `tick` on, one quarter note lasts `quarter`.
struct smf_tempo_change {
  std::uint64_t tick = 0;
  std::chrono::microseconds quarter{500'000};
  friend bool operator==(const smf_tempo_change&, const smf_tempo_change&) = default;
};

namespace detail {

// An exact time on a tempo map: ns + rem / tpq nanoseconds, 0 <= rem < tpq. A tick lasts
// quarter * 1000 / tpq ns, seldom a whole number, so tick times are kept as fractions and
// rounded only when asked for: no rounding error accumulates over tempo changes.
struct smf_exact_time {
  std::int64_t ns = 0;
  std::int64_t rem = 0;
  friend auto operator<=>(const smf_exact_time&, const smf_exact_time&) = default;

  // Rounded to the nearest nanosecond, halves up.
  std::chrono::nanoseconds rounded(std::int64_t tpq) const noexcept {
    return std::chrono::nanoseconds(ns + (ns < std::numeric_limits<std::int64_t>::max() && 2 * rem >= tpq));
  }
};

// `t` plus `ticks` ticks at `per_quarter_ns` ns a quarter of `tpq` ticks (1..32767). Whole
// quarters are added as whole nanoseconds, the remaining ticks through the fraction: every
// product stays below 2^63 (part * per_quarter_ns + rem < 32767 * 1.7e13 + 32767 < 5.5e17).
// Throws std::out_of_range beyond 2^63 ns (292 years).
inline smf_exact_time smf_advance(smf_exact_time t, std::uint64_t ticks, std::int64_t per_quarter_ns,
                                  std::int64_t tpq) {
  if (per_quarter_ns == 0 || ticks == 0) return t;  // a tempo of 0 us a quarter: ticks take no time
  constexpr auto max = std::numeric_limits<std::int64_t>::max();
  const auto whole = ticks / std::uint64_t(tpq);
  const auto part = std::int64_t(ticks % std::uint64_t(tpq));
  if (whole >= std::uint64_t(max / per_quarter_ns))
    throw std::out_of_range("tactus::midi: MIDI file time beyond 2^63 ns");
  const auto x = part * per_quarter_ns + t.rem;
  const auto add = std::int64_t(whole) * per_quarter_ns + x / tpq;  // <= max - per_quarter_ns + per_quarter_ns
  if (add > max - t.ns) throw std::out_of_range("tactus::midi: MIDI file time beyond 2^63 ns");
  return {t.ns + add, x % tpq};
}

}  // namespace detail

/// A parsed Standard MIDI File.
struct smf_file {
  int format = 0;              ///< 0, 1 or 2
  std::uint16_t division = 0;  ///< raw header division: ticks per quarter, or SMPTE if bit 15 is set
  std::vector<smf_track> tracks;

  bool is_smpte() const noexcept { return (division & 0x8000) != 0; }
  /// Ticks per quarter note; 0 for SMPTE-timed files.
  int ticks_per_quarter() const noexcept { return is_smpte() ? 0 : division; }

  /// All tempo meta events (FF 51) of all tracks, sorted stably by tick. Empty if the file
  /// sets none (the SMF default is then 120 bpm, 500000 us per quarter).
  std::vector<smf_tempo_change> tempo_map() const {
    std::vector<smf_tempo_change> out;
    for (const auto& t : tracks)
      for (const auto& m : t.meta)
        if (m.type == 0x51 && m.data.size() == 3)
          out.push_back({m.tick, std::chrono::microseconds{(m.data[0] << 16) | (m.data[1] << 8) | m.data[2]}});
    std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.tick < b.tick; });
    return out;
  }

  /// The time of `tick` from the start of the file, rounded to the nearest nanosecond (halves
  /// up). Ticks-per-quarter files: across tempo_map() (500000 us a quarter until the first
  /// change; of several changes on one tick the last in tempo_map() order holds), computed
  /// exactly from tick 0 in integer arithmetic, so the result is as exact at the thousandth
  /// tempo change as at the first. SMPTE files: tick x 1 s / (frames a second x ticks a frame),
  /// 29 meaning 30000/1001 frames a second. Meaningful for formats 0 and 1 (format 2 tracks are
  /// independent songs; this merges their tempo changes). Builds the tempo map on each call.
  /// Throws std::out_of_range beyond 2^63 ns, std::domain_error for an SMPTE division with no
  /// frame rate or no ticks per frame. Thread-safe: yes (const). Realtime-safe: no (allocates).
  std::chrono::nanoseconds time_at(std::uint64_t tick) const {
    if (is_smpte()) {
      const int fps = -static_cast<std::int8_t>(division >> 8), per_frame = division & 0xFF;
      if (fps <= 0 || per_frame == 0)
        throw std::domain_error("tactus::midi: SMPTE division " + std::to_string(division) + " has no tick duration");
      const std::uint64_t num = fps == 29 ? 1'001'000'000 : 1'000'000'000;  // ns a second (29.97 fps: slowed)
      const std::uint64_t den = std::uint64_t(fps == 29 ? 30 : fps) * std::uint64_t(per_frame);
      const auto q = tick / den, r = tick % den;  // r * num * 2 < 1.6e13: no overflow
      if (q > std::uint64_t(std::numeric_limits<std::int64_t>::max()) / num - 1)
        throw std::out_of_range("tactus::midi: MIDI file time beyond 2^63 ns");
      return std::chrono::nanoseconds(std::int64_t(q * num + (2 * r * num + den) / (2 * den)));
    }
    const std::int64_t tpq = ticks_per_quarter();
    detail::smf_exact_time t;
    std::uint64_t at = 0;
    std::int64_t per_quarter = 500'000'000;  // ns
    for (const auto& c : tempo_map()) {
      if (c.tick >= tick) break;
      t = detail::smf_advance(t, c.tick - at, per_quarter, tpq);
      at = c.tick;
      per_quarter = c.quarter.count() * 1000;
    }
    return detail::smf_advance(t, tick - at, per_quarter, tpq).rounded(tpq);
  }
};

namespace detail {

[[noreturn]] inline void smf_throw_io(const std::filesystem::path& path, const char* what, int err) {
  throw std::system_error(err ? err : EIO, std::generic_category(),
                          std::string("tactus::midi: cannot ") + what + " '" + path.string() + "'");
}

struct smf_file_closer {
  void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};

// Bounds-checked big-endian reader over the file bytes; every failure names its offset.
class smf_cursor {
 public:
  explicit smf_cursor(std::span<const std::uint8_t> b) noexcept : b_(b) {}
  std::size_t pos() const noexcept { return pos_; }
  std::size_t left() const noexcept { return b_.size() - pos_; }
  std::size_t end() const noexcept { return b_.size(); }
  bool at(std::size_t limit) const noexcept { return pos_ >= limit; }

  std::uint8_t u8(std::size_t limit, const char* what) {
    if (pos_ >= limit) throw smf_error(pos_, std::string("unexpected end of data reading ") + what);
    return b_[pos_++];
  }
  std::uint8_t peek(std::size_t limit, const char* what) const {
    if (pos_ >= limit) throw smf_error(pos_, std::string("unexpected end of data reading ") + what);
    return b_[pos_];
  }
  std::uint32_t u16(std::size_t limit, const char* what) {
    const std::uint32_t hi = u8(limit, what);
    return (hi << 8) | u8(limit, what);
  }
  std::uint32_t u32(std::size_t limit, const char* what) {
    const std::uint32_t hi = u16(limit, what);
    return (hi << 16) | u16(limit, what);
  }
  std::uint32_t vlq(std::size_t limit, const char* what) {
    const auto start = pos_;
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const auto b = u8(limit, what);
      v = (v << 7) | (b & 0x7F);
      if (!(b & 0x80)) return v;
    }
    throw smf_error(start, std::string("variable-length quantity longer than 4 bytes in ") + what);
  }
  std::span<const std::uint8_t> take(std::size_t n, std::size_t limit, const char* what) {
    if (n > limit - pos_) {
      throw smf_error(pos_, std::string(what) + " of " + std::to_string(n) + " bytes runs past the end (" +
                                std::to_string(limit - pos_) + " left)");
    }
    auto s = b_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  void seek(std::size_t p) noexcept { pos_ = p; }

 private:
  std::span<const std::uint8_t> b_;
  std::size_t pos_ = 0;
};

inline smf_track smf_read_track(smf_cursor& c, std::size_t limit) {
  smf_track track;
  std::uint64_t tick = 0;
  std::uint8_t running = 0;
  std::vector<std::uint8_t> pending_sysex;  // a sysex split over F0 ... / F7 ... packets
  std::size_t pending_at = 0;
  while (!c.at(limit)) {
    tick += c.vlq(limit, "delta time");
    const auto at = c.pos();
    std::uint8_t status = c.peek(limit, "event");
    if (status >= 0x80) {
      c.u8(limit, "status");
    } else if (running == 0) {
      throw smf_error(at, "data byte with no running status");
    } else {
      status = running;  // running status: the byte read next is the first data byte
    }

    if (status == 0xFF) {
      const auto type = c.u8(limit, "meta event type");
      if (type >= 0x80) throw smf_error(at + 1, "meta event type >= 0x80");
      const auto len = c.vlq(limit, "meta event length");
      const auto data = c.take(len, limit, "meta event");
      if (type == 0x2F) {  // end of track: anything after it in the chunk is ignored
        c.seek(limit);
        break;
      }
      if (type == 0x51 && len != 3) throw smf_error(at, "tempo meta event length is not 3");
      track.meta.push_back({tick, type, std::vector<std::uint8_t>(data.begin(), data.end())});
    } else if (status == 0xF0 || status == 0xF7) {
      const auto len = c.vlq(limit, "sysex length");
      const auto data = c.take(len, limit, "sysex event");
      const bool continuation = status == 0xF7 && !pending_sysex.empty();
      if (status == 0xF0 || continuation) {
        if (status == 0xF0) {
          if (!pending_sysex.empty()) throw smf_error(at, "sysex started before the previous one ended");
          pending_sysex.push_back(0xF0);
          pending_at = at;
        }
        pending_sysex.insert(pending_sysex.end(), data.begin(), data.end());
        if (!data.empty() && data.back() == 0xF7) {
          auto m = message::from_bytes(pending_sysex);
          if (!m) throw smf_error(pending_at, "sysex holds a byte >= 0x80");
          track.events.push_back({tick, std::move(*m)});
          pending_sysex.clear();
        }
      } else {
        // F7 escape: raw bytes sent as they are. Keep them when they form one message.
        if (auto m = message::from_bytes(data)) track.events.push_back({tick, std::move(*m)});
      }
    } else if (status >= 0xF0) {
      const char* hex = "0123456789ABCDEF";
      throw smf_error(at, std::string("status byte 0x") + hex[status >> 4] + hex[status & 15] +
                              " is not allowed in a MIDI file (system common or realtime outside an F7 escape)");
    } else {
      running = status;
      std::uint8_t raw[3] = {status, 0, 0};
      const auto n = message_length(status);
      for (std::size_t i = 1; i < n; ++i) {
        const auto d = c.u8(limit, "channel message data");
        if (d >= 0x80) throw smf_error(c.pos() - 1, "status byte where a data byte was expected");
        raw[i] = d;
      }
      track.events.push_back({tick, *message::from_bytes(std::span<const std::uint8_t>(raw, n))});
    }
  }
  if (!pending_sysex.empty()) throw smf_error(pending_at, "sysex not terminated by 0xF7 before the end of the track");
  return track;
}

}  // namespace detail

/// Parses a Standard MIDI File held in memory: header, then the declared number of MTrk
/// chunks (other chunk types are skipped, bytes after the last track are ignored).
/// Accepts running status, including across meta and sysex events (which the spec says
/// cancel it, but some writers rely on it), a missing end-of-track at the end of a chunk,
/// sysex split in F0/F7 packets (reassembled), and F7 escapes holding one complete message.
/// Throws smf_error (a std::runtime_error naming the byte offset) on malformed input; every
/// read is bounds-checked, so no input makes it read out of range.
/// Thread-safe: yes (no shared state). Realtime-safe: no (allocates).
inline smf_file smf_read(std::span<const std::uint8_t> bytes) {
  detail::smf_cursor c(bytes);
  const auto end = c.end();
  auto tag = [&](const char* what) {
    const auto t = c.take(4, end, what);
    return std::string(t.begin(), t.end());
  };
  if (c.left() < 14 || tag("header") != "MThd") throw smf_error(0, "not a Standard MIDI File (no MThd header)");
  const auto header_len = c.u32(end, "header length");
  if (header_len < 6) throw smf_error(4, "header length " + std::to_string(header_len) + " is below 6");
  const auto header_end = c.pos() + header_len;
  if (header_len > c.left()) throw smf_error(4, "header length runs past the end of the data");
  smf_file file;
  file.format = static_cast<int>(c.u16(header_end, "format"));
  if (file.format > 2) throw smf_error(8, "unknown format " + std::to_string(file.format));
  const auto ntracks = c.u16(header_end, "track count");
  file.division = static_cast<std::uint16_t>(c.u16(header_end, "division"));
  if (file.division == 0) throw smf_error(12, "division is 0");
  if (file.format == 0 && ntracks != 1)
    throw smf_error(10, "format 0 with " + std::to_string(ntracks) + " tracks (must be 1)");
  c.seek(header_end);

  while (file.tracks.size() < ntracks) {
    if (c.left() < 8)
      throw smf_error(c.pos(),
                      "expected " + std::to_string(ntracks) + " tracks, found " + std::to_string(file.tracks.size()));
    const auto chunk_at = c.pos();
    const auto type = tag("chunk type");
    const auto len = c.u32(end, "chunk length");
    if (len > c.left()) {
      throw smf_error(chunk_at + 4, "chunk length " + std::to_string(len) + " runs past the end of the data (" +
                                        std::to_string(c.left()) + " bytes left)");
    }
    const auto chunk_end = c.pos() + len;
    if (type == "MTrk") file.tracks.push_back(detail::smf_read_track(c, chunk_end));
    c.seek(chunk_end);
  }
  return file;
}

/// Reads and parses the file at `path`; see the span overload. Reads only what the header and
/// the track chunks declare, as they declare it (bytes after the last track are not read, so a
/// pipe or a device that never ends is no problem), and at most `max_bytes`: a file that needs
/// more throws smf_too_large naming the limit, before reading or allocating that much (a chunk
/// that declares more is refused from its length). /dev/zero fails at once: no MThd header.
/// Throws std::system_error naming the path if the file cannot be read, smf_error if it is
/// malformed. Thread-safe: yes. Realtime-safe: no.
inline smf_file smf_read(const std::filesystem::path& path, std::size_t max_bytes = smf_default_max_bytes) {
  errno = 0;
  std::unique_ptr<std::FILE, detail::smf_file_closer> f(std::fopen(path.c_str(), "rb"));
  if (!f) detail::smf_throw_io(path, "open", errno);
  std::vector<std::uint8_t> bytes;
  // Appends up to `n` more bytes (fewer at the end of the file), in steps, so that a length
  // the file does not hold allocates no more than the file has. False at the end of the file.
  auto read = [&](std::uint64_t n) {
    if (bytes.size() + n > max_bytes) throw smf_too_large(path.string(), bytes.size(), max_bytes);
    constexpr std::size_t step = 1 << 16;
    while (n > 0) {
      const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(n, step));
      const auto at = bytes.size();
      bytes.resize(at + want);
      const auto got = std::fread(bytes.data() + at, 1, want, f.get());
      bytes.resize(at + got);
      if (got < want) {
        if (std::ferror(f.get())) detail::smf_throw_io(path, "read", errno);
        return false;
      }
      n -= got;
    }
    return true;
  };
  auto u32_at = [&](std::size_t i) {
    return std::uint32_t(bytes[i]) << 24 | std::uint32_t(bytes[i + 1]) << 16 | std::uint32_t(bytes[i + 2]) << 8 |
           bytes[i + 3];
  };
  // The header, then the chunks up to the declared number of MTrk; anything short or wrong is
  // left to the span overload, which says what and where.
  if (read(14) && std::equal(bytes.begin(), bytes.begin() + 4, "MThd") && u32_at(4) >= 6 && read(u32_at(4) - 6)) {
    const unsigned ntracks = unsigned(bytes[10]) << 8 | bytes[11];
    for (unsigned found = 0; found < ntracks;) {
      const auto at = bytes.size();
      if (!read(8) || !read(u32_at(at + 4))) break;
      if (std::equal(bytes.begin() + std::ptrdiff_t(at), bytes.begin() + std::ptrdiff_t(at) + 4, "MTrk")) ++found;
    }
  }
  return smf_read(std::span<const std::uint8_t>(bytes));
}

}  // namespace tactus::midi
