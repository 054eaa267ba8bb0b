// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/message.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

// Standard MIDI Files (.mid, SMF format 0 and 1). smf_writer records messages, stamped with
// the time since recording began or with a tick, and writes the file; smf_read parses a file
// back into tracks of (absolute tick, message) plus its meta events. Standard library only.
//
//   tactus::midi::smf_writer w{480, std::chrono::microseconds{500'000}};  // 480 ticks/quarter, 120 bpm
//   w.add(now - start, tactus::midi::message::note_on(9, 36, 100));
//   w.write("take.mid");
//   auto file = tactus::midi::smf_read("take.mid");

namespace tactus::midi {

/// A malformed Standard MIDI File: what is wrong, and the byte offset in the file where it is.
class smf_error : public std::runtime_error {
 public:
  smf_error(std::size_t offset, const std::string& what)
      : std::runtime_error("tactus::midi: malformed MIDI file at byte " + std::to_string(offset) + ": " + what),
        offset_(offset) {}
  /// Byte offset from the start of the file.
  std::size_t offset() const noexcept { return offset_; }

 private:
  std::size_t offset_;
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
};

namespace detail {

// Variable-length quantity: 7 bits a byte, most significant first, high bit on all but the
// last. SMF allows at most 4 bytes, so values up to 0x0FFFFFFF.
inline constexpr std::uint32_t smf_max_vlq = 0x0FFFFFFF;

inline void smf_put_vlq(std::vector<std::uint8_t>& out, std::uint32_t v) {
  std::uint8_t buf[4];
  int n = 0;
  buf[n++] = v & 0x7F;
  while ((v >>= 7) != 0 && n < 4) buf[n++] = std::uint8_t(0x80 | (v & 0x7F));
  while (n > 0) out.push_back(buf[--n]);
}

inline void smf_put_u16(std::vector<std::uint8_t>& out, std::uint32_t v) {
  out.push_back(std::uint8_t(v >> 8));
  out.push_back(std::uint8_t(v));
}

inline void smf_put_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  smf_put_u16(out, v >> 16);
  smf_put_u16(out, v & 0xFFFF);
}

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

/// Reads and parses the file at `path`; see the span overload. Throws std::system_error
/// naming the path if the file cannot be read, smf_error if it is malformed.
inline smf_file smf_read(const std::filesystem::path& path) {
  errno = 0;
  std::unique_ptr<std::FILE, detail::smf_file_closer> f(std::fopen(path.c_str(), "rb"));
  if (!f) detail::smf_throw_io(path, "open", errno);
  std::vector<std::uint8_t> bytes;
  std::uint8_t buf[16384];
  for (;;) {
    const auto n = std::fread(buf, 1, sizeof buf, f.get());
    bytes.insert(bytes.end(), buf, buf + n);
    if (n < sizeof buf) break;
  }
  if (std::ferror(f.get())) detail::smf_throw_io(path, "read", errno);
  return smf_read(std::span<const std::uint8_t>(bytes));
}

/// Records MIDI messages and writes them as a Standard MIDI File, format 0 or 1.
/// Channel messages are written as they are (no running status), sysex as F0 <length> <data>,
/// system common (song position, tune request...) as F7 escapes. The tempo given at construction is written as a tempo meta event (FF 51) at tick 0 of the
/// first track, and converts times to ticks in add(). Realtime messages (clock, start...) are
/// not valid in a MIDI file: add() skips and counts them. Events of a track are written in
/// tick order; events on the same tick keep the order they were added in.
/// Thread-safe: no (one writer per recording; guard it if several threads add).
/// Realtime-safe: no (add() may allocate).
class smf_writer {
 public:
  /// `ticks_per_quarter` is the file's division, 1..32767. `quarter` is the duration of one
  /// quarter note (500000 us is 120 bpm), 1..16777215 us as SMF stores it in 24 bits.
  /// Throws std::invalid_argument outside those ranges.
  explicit smf_writer(int ticks_per_quarter = 480,
                      std::chrono::microseconds quarter = std::chrono::microseconds{500'000})
      : tpq_(ticks_per_quarter), quarter_(quarter) {
    if (ticks_per_quarter < 1 || ticks_per_quarter > 0x7FFF)
      throw std::invalid_argument("tactus::midi: ticks per quarter " + std::to_string(ticks_per_quarter) +
                                  " out of range 1..32767");
    if (quarter.count() < 1 || quarter.count() > 0xFFFFFF)
      throw std::invalid_argument("tactus::midi: quarter note duration " + std::to_string(quarter.count()) +
                                  " us out of range 1..16777215");
    tracks_.resize(1);
  }

  /// The tick of a time since the start of the recording at this writer's tempo, rounded to
  /// the nearest tick (halves up). Computed from the absolute time in exact integer
  /// arithmetic, so long recordings do not drift. Throws std::out_of_range for negative times
  /// or ticks beyond 2^63.
  std::uint64_t to_tick(std::chrono::nanoseconds since_start) const {
    if (since_start.count() < 0) throw std::out_of_range("tactus::midi: negative time in a MIDI file recording");
    const auto ns = static_cast<std::uint64_t>(since_start.count());
    const auto per_quarter = static_cast<std::uint64_t>(quarter_.count()) * 1000;  // ns, <= 1.7e13
    const auto tpq = static_cast<std::uint64_t>(tpq_);
    const auto q = ns / per_quarter, r = ns % per_quarter;  // r * tpq * 2 < 1.1e18: no overflow
    if (q > (std::numeric_limits<std::uint64_t>::max() / 2) / tpq)
      throw std::out_of_range("tactus::midi: time too large for a MIDI file");
    return q * tpq + (2 * r * tpq + per_quarter) / (2 * per_quarter);
  }

  /// Records `m` at `since_start` (time since the recording began) on `track` (0-based;
  /// tracks are created as needed, up to 65535). Realtime messages are skipped and counted in
  /// skipped(). Throws std::invalid_argument for an empty message or a bad track,
  /// std::out_of_range for a negative time.
  void add(std::chrono::nanoseconds since_start, const message& m, int track = 0) {
    add_at_tick(to_tick(since_start), m, track);
  }

  /// Records `m` at an absolute `tick` on `track`; see add().
  void add_at_tick(std::uint64_t tick, const message& m, int track = 0) {
    if (m.empty()) throw std::invalid_argument("tactus::midi: empty message added to a MIDI file");
    auto& t = track_at(track);
    if (m.is_realtime()) {
      ++skipped_;
      return;
    }
    t.events.push_back({tick, m});
  }

  /// Names `track` (FF 03 at tick 0). Throws std::invalid_argument for a bad track.
  void set_track_name(int track, std::string_view name) { track_at(track).name.assign(name); }

  /// Writes a time signature (FF 58) at tick 0 of the first track: `numerator`/`denominator`
  /// (denominator a power of two, 1..128), `clocks_per_click` MIDI clocks per metronome click,
  /// `thirty_seconds_per_quarter` notated 32nd notes per quarter. Throws std::invalid_argument.
  void set_time_signature(int numerator, int denominator, int clocks_per_click = 24,
                          int thirty_seconds_per_quarter = 8) {
    int log2 = 0;
    while (log2 < 8 && (1 << log2) != denominator) ++log2;
    if (numerator < 1 || numerator > 255 || log2 == 8 || clocks_per_click < 1 || clocks_per_click > 255 ||
        thirty_seconds_per_quarter < 1 || thirty_seconds_per_quarter > 255)
      throw std::invalid_argument("tactus::midi: invalid time signature");
    time_signature_ = {std::uint8_t(numerator), std::uint8_t(log2), std::uint8_t(clocks_per_click),
                       std::uint8_t(thirty_seconds_per_quarter)};
  }

  /// Realtime messages skipped by add() since construction or clear().
  std::uint64_t skipped() const noexcept { return skipped_; }
  /// Messages recorded, all tracks.
  std::size_t size() const noexcept {
    std::size_t n = 0;
    for (const auto& t : tracks_) n += t.events.size();
    return n;
  }
  /// Tracks the file will have in format 1 (at least 1: highest track used + 1).
  std::size_t track_count() const noexcept { return tracks_.size(); }
  int ticks_per_quarter() const noexcept { return tpq_; }
  std::chrono::microseconds quarter() const noexcept { return quarter_; }

  /// Forgets all events, names and the skipped count (keeps division, tempo, time signature).
  void clear() noexcept {
    tracks_.clear();
    tracks_.resize(1);
    skipped_ = 0;
  }

  /// The file. Format 1: one MTrk a track, the first one holding tempo and time signature.
  /// Format 0: one MTrk holding every track's events merged by tick (on the same tick, lower
  /// track first, then insertion order) under the first track's name; other track names are
  /// dropped. Throws std::invalid_argument for another format and
  /// std::length_error if two consecutive events are more than 0x0FFFFFFF ticks apart (the
  /// largest delta time SMF can store).
  std::vector<std::uint8_t> bytes(int format = 1) const {
    if (format != 0 && format != 1) throw std::invalid_argument("tactus::midi: can write MIDI file format 0 or 1 only");
    std::vector<std::uint8_t> out;
    out.insert(out.end(), {'M', 'T', 'h', 'd'});
    detail::smf_put_u32(out, 6);
    detail::smf_put_u16(out, std::uint32_t(format));
    detail::smf_put_u16(out, format == 0 ? 1u : std::uint32_t(tracks_.size()));
    detail::smf_put_u16(out, std::uint32_t(tpq_));
    if (format == 0) {
      std::vector<const event*> all;
      for (const auto& t : tracks_)
        for (const auto& e : t.events) all.push_back(&e);
      write_track(out, all, tracks_[0].name, true);
    } else {
      for (std::size_t i = 0; i < tracks_.size(); ++i) {
        std::vector<const event*> evs;
        for (const auto& e : tracks_[i].events) evs.push_back(&e);
        write_track(out, evs, tracks_[i].name, i == 0);
      }
    }
    return out;
  }

  /// Writes bytes(format) to `path`, replacing it. Throws std::system_error naming the path
  /// on any I/O failure, plus what bytes() throws.
  void write(const std::filesystem::path& path, int format = 1) const {
    const auto data = bytes(format);
    errno = 0;
    std::unique_ptr<std::FILE, detail::smf_file_closer> f(std::fopen(path.c_str(), "wb"));
    if (!f) detail::smf_throw_io(path, "create", errno);
    if (std::fwrite(data.data(), 1, data.size(), f.get()) != data.size()) detail::smf_throw_io(path, "write", errno);
    if (std::fclose(f.release()) != 0) detail::smf_throw_io(path, "write", errno);
  }

 private:
  struct event {
    std::uint64_t tick;
    message msg;
  };
  struct track {
    std::vector<event> events;
    std::string name;
  };

  track& track_at(int i) {
    if (i < 0 || i > 0xFFFE)
      throw std::invalid_argument("tactus::midi: track " + std::to_string(i) + " out of range 0..65534");
    if (std::size_t(i) >= tracks_.size()) tracks_.resize(std::size_t(i) + 1);
    return tracks_[std::size_t(i)];
  }

  void write_track(std::vector<std::uint8_t>& out, std::vector<const event*>& evs, const std::string& name,
                   bool conductor) const {
    std::stable_sort(evs.begin(), evs.end(), [](const event* a, const event* b) { return a->tick < b->tick; });
    out.insert(out.end(), {'M', 'T', 'r', 'k'});
    const auto len_at = out.size();
    detail::smf_put_u32(out, 0);  // patched below
    auto meta = [&](std::uint8_t type, std::span<const std::uint8_t> data) {
      out.push_back(0);  // delta 0: meta events are at tick 0
      out.push_back(0xFF);
      out.push_back(type);
      detail::smf_put_vlq(out, std::uint32_t(data.size()));
      out.insert(out.end(), data.begin(), data.end());
    };
    if (!name.empty()) {
      const auto n = std::min<std::size_t>(name.size(), detail::smf_max_vlq);
      meta(0x03, std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(name.data()), n));
    }
    if (conductor) {
      const auto us = static_cast<std::uint32_t>(quarter_.count());
      const std::uint8_t tempo[3] = {std::uint8_t(us >> 16), std::uint8_t(us >> 8), std::uint8_t(us)};
      meta(0x51, tempo);
      if (time_signature_[0] != 0) meta(0x58, time_signature_);
    }
    std::uint64_t last = 0;
    for (const auto* e : evs) {
      const auto delta = e->tick - last;
      if (delta > detail::smf_max_vlq)
        throw std::length_error("tactus::midi: " + std::to_string(delta) +
                                " ticks between two events, more than a MIDI file can store");
      detail::smf_put_vlq(out, std::uint32_t(delta));
      last = e->tick;
      const auto b = e->msg.bytes();
      if (b[0] == 0xF0) {  // F0 <length> <bytes after F0, F7 included>
        if (b.size() - 1 > detail::smf_max_vlq) throw std::length_error("tactus::midi: sysex too long for a MIDI file");
        out.push_back(0xF0);
        detail::smf_put_vlq(out, std::uint32_t(b.size() - 1));
        out.insert(out.end(), b.begin() + 1, b.end());
      } else if (b[0] >= 0xF0) {  // system common is not an SMF event: F7 escape <length> <bytes>
        out.push_back(0xF7);
        detail::smf_put_vlq(out, std::uint32_t(b.size()));
        out.insert(out.end(), b.begin(), b.end());
      } else {
        out.insert(out.end(), b.begin(), b.end());  // full status on every event: no running status
      }
    }
    out.insert(out.end(), {0x00, 0xFF, 0x2F, 0x00});  // end of track
    const auto chunk = out.size() - len_at - 4;
    if (chunk > 0xFFFFFFFFu) throw std::length_error("tactus::midi: track longer than a MIDI file chunk can hold");
    const auto len = static_cast<std::uint32_t>(chunk);
    for (int i = 0; i < 4; ++i) out[len_at + std::size_t(i)] = std::uint8_t(len >> (24 - 8 * i));
  }

  int tpq_;
  std::chrono::microseconds quarter_;
  std::vector<track> tracks_;
  std::array<std::uint8_t, 4> time_signature_{};  // numerator 0: none set
  std::uint64_t skipped_ = 0;
};

}  // namespace tactus::midi
