// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/message.hpp>
#include <tactus/midi/smf_reader.hpp>
#include <tactus/tempo.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <limits>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// Writing Standard MIDI Files (.mid, SMF format 0 and 1): smf_writer records messages, stamped
// with the time since recording began or with a tick, and the tempo changes met on the way,
// then writes the file. Times become ticks through the recorded tempo map, exactly, so a take
// made while following a drifting external clock reads back at the times it was played.
// Standard library only (it shares smf_tempo_change and the file helpers of smf_reader.hpp).
//
//   tactus::midi::smf_writer w{480, std::chrono::microseconds{500'000}};  // 480 ticks/quarter, 120 bpm
//   w.add(now - start, tactus::midi::message::note_on(9, 36, 100));
//   w.set_tempo(now - start, tactus::bpm{97.3});
//   w.write("take.mid");

namespace tactus::midi {

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

// "12.345678901 s", for messages naming times.
inline std::string smf_seconds(std::chrono::nanoseconds t) {
  char buf[48];
  const auto ns = t.count();
  std::snprintf(buf, sizeof buf, "%s%lld.%09lld s", ns < 0 ? "-" : "", std::llabs(ns / 1'000'000'000),
                std::llabs(ns % 1'000'000'000));
  return buf;
}

}  // namespace detail

/// Records MIDI messages and tempo changes and writes them as a Standard MIDI File, format 0
/// or 1. Channel messages are written as they are (no running status), sysex as F0 <length>
/// <data>, system common (song position, tune request...) as F7 escapes. Realtime messages
/// (clock, start...) are not valid in a MIDI file: add() skips and counts them. Events of a
/// track are written in tick order; events on the same tick keep the order they were added in.
///
/// Tempo map. The tempo given at construction is written as a tempo meta event (FF 51) at
/// tick 0 of the first track (format 1: the conductor track, which also holds track 0's
/// events; format 0: the merged track). set_tempo() adds a change at a later time: an FF 51 in
/// the same track at the tick of that time, from which on times count at the new tempo. Each
/// change sits at an exact, unrounded time (its tick's time under the changes before it), and
/// a time converts to the nearest tick counted from the change it follows: a time read back
/// through the file's tempo map (smf_file::time_at) is within half a tick, at the tempo there,
/// of the time recorded, after any number of changes. add() keeps the time and converts it
/// when the file is written, so add() and set_tempo() may come in any order; only tempo
/// changes must come in time order.
///
/// Thread-safe: no (one writer per recording; guard it if several threads add).
/// Realtime-safe: no (add() and set_tempo() may allocate).
class smf_writer {
 public:
  /// `ticks_per_quarter` is the file's division, 1..32767. `quarter` is the duration of one
  /// quarter note at tick 0 (500000 us is 120 bpm), 1..16777215 us as SMF stores it in 24 bits.
  /// Throws std::invalid_argument outside those ranges.
  explicit smf_writer(int ticks_per_quarter = 480,
                      std::chrono::microseconds quarter = std::chrono::microseconds{500'000})
      : tpq_(ticks_per_quarter) {
    if (ticks_per_quarter < 1 || ticks_per_quarter > 0x7FFF)
      throw std::invalid_argument("tactus::midi: ticks per quarter " + std::to_string(ticks_per_quarter) +
                                  " out of range 1..32767");
    segments_.push_back({0, {}, checked(quarter)});
    tracks_.resize(1);
  }

  /// The tick of a time since the start of the recording, under the tempo map as set so far:
  /// the nearest tick (halves up) counted from the last tempo change at or before that time.
  /// Computed from the change's exact time in integer arithmetic, so long recordings do not
  /// drift. Throws std::out_of_range for negative times or ticks beyond 2^63.
  std::uint64_t to_tick(std::chrono::nanoseconds since_start) const {
    if (since_start.count() < 0) throw std::out_of_range("tactus::midi: negative time in a MIDI file recording");
    const auto t = since_start.count();
    // The last segment starting at or before t: (start.ns, start.rem) <= (t, 0).
    const auto s = std::prev(std::upper_bound(segments_.begin(), segments_.end(), t, [](std::int64_t x, const auto& g) {
      return x < g.start.ns || (x == g.start.ns && g.start.rem > 0);
    }));
    // Ticks since the segment's start: round((t - start) * tpq / per_quarter), with start =
    // ns + rem / tpq. Split into whole quarters and a remainder so no product passes 2^63.
    const auto tpq = std::int64_t(tpq_), per_quarter = s->quarter.count() * 1000;  // ns, <= 1.7e13
    auto quarters = (t - s->start.ns) / per_quarter;
    auto x = (t - s->start.ns) % per_quarter * tpq - s->start.rem;  // in ns * tpq, > -tpq
    if (x < 0) --quarters, x += per_quarter * tpq;                  // t >= start, so a whole quarter is there to borrow
    const auto limit = std::numeric_limits<std::uint64_t>::max() / 2;
    if (std::uint64_t(quarters) > (limit - s->tick) / std::uint64_t(tpq))
      throw std::out_of_range("tactus::midi: time too large for a MIDI file");
    return s->tick + std::uint64_t(quarters * tpq + (2 * x + per_quarter) / (2 * per_quarter));
  }

  /// Records a tempo change at `since_start` (time since the recording began): from then on a
  /// quarter note lasts `quarter`, 1..16777215 us. Written as FF 51 in the first track at
  /// to_tick(since_start), the nearest tick under the changes before it. At time 0, or on the
  /// same tick as the previous change, it replaces that change (no two FF 51 on one tick); a
  /// change to the tempo already in force writes nothing. Times must not decrease from one
  /// change to the next. Throws std::invalid_argument for a quarter out of range or a time
  /// before the previous change's (naming both), std::out_of_range for a negative time.
  void set_tempo(std::chrono::nanoseconds since_start, std::chrono::microseconds quarter) {
    checked(quarter);
    const auto tick = to_tick(since_start);  // also rejects negative times
    if (since_start < latest_change_)
      throw std::invalid_argument("tactus::midi: tempo change at " + detail::smf_seconds(since_start) +
                                  " is before the previous one at " + detail::smf_seconds(latest_change_));
    latest_change_ = since_start;
    change_at(tick, quarter);
  }

  /// set_tempo() with a tempo in beats (quarter notes) per minute, rounded to the nearest
  /// microsecond a quarter (SMF's range takes about 3.6 bpm and faster).
  void set_tempo(std::chrono::nanoseconds since_start, tactus::bpm tempo) { set_tempo(since_start, quarter_of(tempo)); }

  /// Records a tempo change at an absolute `tick`, at or after the previous change's tick; see
  /// set_tempo(). Events added by time are converted through it like any other change.
  /// Throws std::invalid_argument for a quarter out of range or a tick before the previous change's.
  void set_tempo_at_tick(std::uint64_t tick, std::chrono::microseconds quarter) {
    checked(quarter);
    if (tick < segments_.back().tick)
      throw std::invalid_argument("tactus::midi: tempo change at tick " + std::to_string(tick) +
                                  " is before the previous one at tick " + std::to_string(segments_.back().tick));
    const auto at = start_of(tick);
    change_at(tick, quarter);
    // Later changes by time come after this one: no earlier than its time, rounded up.
    latest_change_ = std::max(latest_change_, std::chrono::nanoseconds(at.ns + (at.rem > 0)));
  }

  /// set_tempo_at_tick() with a tempo in beats per minute, rounded as set_tempo() does.
  void set_tempo_at_tick(std::uint64_t tick, tactus::bpm tempo) { set_tempo_at_tick(tick, quarter_of(tempo)); }

  /// The tempo changes as they will be written, the one at tick 0 first.
  std::vector<smf_tempo_change> tempo_map() const {
    std::vector<smf_tempo_change> out;
    for (const auto& s : segments_) out.push_back({s.tick, s.quarter});
    return out;
  }

  /// Records `m` at `since_start` (time since the recording began) on `track` (0-based;
  /// tracks are created as needed, up to 65535). The time becomes a tick when the file is
  /// written, through every tempo change set by then. Realtime messages are skipped and
  /// counted in skipped(). Throws std::invalid_argument for an empty message or a bad track,
  /// std::out_of_range for a negative time or one beyond what the file can hold.
  void add(std::chrono::nanoseconds since_start, const message& m, int track = 0) {
    (void)to_tick(since_start);  // rejects it now rather than when writing
    record({0, since_start.count(), m}, track);
  }

  /// Records `m` at an absolute `tick` on `track`; see add().
  void add_at_tick(std::uint64_t tick, const message& m, int track = 0) { record({tick, -1, m}, track); }

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
  /// The tempo at tick 0: the one given at construction, or set at time 0 since.
  std::chrono::microseconds quarter() const noexcept { return segments_.front().quarter; }

  /// Forgets all events, names, the skipped count and the tempo changes after tick 0 (keeps
  /// division, the tempo at tick 0 and the time signature).
  void clear() noexcept {
    tracks_.clear();
    tracks_.resize(1);
    segments_.resize(1);
    latest_change_ = {};
    skipped_ = 0;
  }

  /// The file. Format 1: one MTrk a track, the first one holding tempo and time signature.
  /// Format 0: one MTrk holding every track's events merged by tick (on the same tick, lower
  /// track first, then insertion order) under the first track's name; other track names are
  /// dropped. A tempo change comes before the events of its tick. Throws
  /// std::invalid_argument for another format, std::out_of_range for a time beyond 2^63
  /// ticks, and std::length_error if two consecutive events are more than 0x0FFFFFFF ticks
  /// apart (the largest delta time SMF can store).
  std::vector<std::uint8_t> bytes(int format = 1) const {
    if (format != 0 && format != 1) throw std::invalid_argument("tactus::midi: can write MIDI file format 0 or 1 only");
    std::vector<std::uint8_t> out;
    out.insert(out.end(), {'M', 'T', 'h', 'd'});
    detail::smf_put_u32(out, 6);
    detail::smf_put_u16(out, std::uint32_t(format));
    detail::smf_put_u16(out, format == 0 ? 1u : std::uint32_t(tracks_.size()));
    detail::smf_put_u16(out, std::uint32_t(tpq_));
    auto ticked = [&](const track& t, std::vector<placed>& into) {
      for (const auto& e : t.events) into.push_back({e.time_ns < 0 ? e.tick : to_tick(e.time()), &e.msg});
    };
    if (format == 0) {
      std::vector<placed> all;
      for (const auto& t : tracks_) ticked(t, all);
      write_track(out, all, tracks_[0].name, true);
    } else {
      for (std::size_t i = 0; i < tracks_.size(); ++i) {
        std::vector<placed> evs;
        ticked(tracks_[i], evs);
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
    std::uint64_t tick;    // when time_ns < 0
    std::int64_t time_ns;  // since the start; < 0: added at a tick
    message msg;
    std::chrono::nanoseconds time() const noexcept { return std::chrono::nanoseconds(time_ns); }
  };
  struct track {
    std::vector<event> events;
    std::string name;
  };
  struct placed {
    std::uint64_t tick;
    const message* msg;
  };
  // From `tick` (exact time `start`) on, a quarter lasts `quarter`.
  struct segment {
    std::uint64_t tick;
    detail::smf_exact_time start;
    std::chrono::microseconds quarter;
  };

  static std::chrono::microseconds checked(std::chrono::microseconds quarter) {
    if (quarter.count() < 1 || quarter.count() > 0xFFFFFF)
      throw std::invalid_argument("tactus::midi: quarter note duration " + std::to_string(quarter.count()) +
                                  " us out of range 1..16777215");
    return quarter;
  }

  static std::chrono::microseconds quarter_of(tactus::bpm tempo) {
    const double us = 60e6 / tempo.value();
    if (!(us < 0xFFFFFF + 0.5))
      throw std::invalid_argument("tactus::midi: tempo " + std::to_string(tempo.value()) +
                                  " bpm is too slow for a MIDI file (about 3.6 bpm at least)");
    return std::chrono::microseconds(std::llround(us));
  }

  // The exact time of `tick`, at or after the last change's tick.
  detail::smf_exact_time start_of(std::uint64_t tick) const {
    const auto& last = segments_.back();
    return detail::smf_advance(last.start, tick - last.tick, last.quarter.count() * 1000, tpq_);
  }

  // A change at `tick`, at or after the last one's.
  void change_at(std::uint64_t tick, std::chrono::microseconds quarter) {
    auto& last = segments_.back();
    if (tick == last.tick) {
      last.quarter = quarter;
      // Back to the tempo before, on the same tick: no change at all.
      if (segments_.size() > 1 && segments_[segments_.size() - 2].quarter == quarter) segments_.pop_back();
    } else if (quarter != last.quarter) {
      segments_.push_back({tick, start_of(tick), quarter});
    }
  }

  void record(event e, int track) {
    if (e.msg.empty()) throw std::invalid_argument("tactus::midi: empty message added to a MIDI file");
    auto& t = track_at(track);
    if (e.msg.is_realtime()) {
      ++skipped_;
      return;
    }
    t.events.push_back(std::move(e));
  }

  track& track_at(int i) {
    if (i < 0 || i > 0xFFFE)
      throw std::invalid_argument("tactus::midi: track " + std::to_string(i) + " out of range 0..65534");
    if (std::size_t(i) >= tracks_.size()) tracks_.resize(std::size_t(i) + 1);
    return tracks_[std::size_t(i)];
  }

  void write_track(std::vector<std::uint8_t>& out, std::vector<placed>& evs, const std::string& name,
                   bool conductor) const {
    std::stable_sort(evs.begin(), evs.end(), [](const placed& a, const placed& b) { return a.tick < b.tick; });
    out.insert(out.end(), {'M', 'T', 'r', 'k'});
    const auto len_at = out.size();
    detail::smf_put_u32(out, 0);  // patched below
    std::uint64_t last = 0;
    auto delta_to = [&](std::uint64_t tick) {
      const auto delta = tick - last;
      if (delta > detail::smf_max_vlq)
        throw std::length_error("tactus::midi: " + std::to_string(delta) +
                                " ticks between two events, more than a MIDI file can store");
      detail::smf_put_vlq(out, std::uint32_t(delta));
      last = tick;
    };
    auto meta = [&](std::uint64_t tick, std::uint8_t type, std::span<const std::uint8_t> data) {
      delta_to(tick);
      out.push_back(0xFF);
      out.push_back(type);
      detail::smf_put_vlq(out, std::uint32_t(data.size()));
      out.insert(out.end(), data.begin(), data.end());
    };
    auto tempo = [&](const segment& s) {
      const auto us = static_cast<std::uint32_t>(s.quarter.count());
      const std::uint8_t data[3] = {std::uint8_t(us >> 16), std::uint8_t(us >> 8), std::uint8_t(us)};
      meta(s.tick, 0x51, data);
    };
    if (!name.empty()) {
      const auto n = std::min<std::size_t>(name.size(), detail::smf_max_vlq);
      meta(0, 0x03, std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(name.data()), n));
    }
    auto change = segments_.begin();
    if (conductor) {
      tempo(*change++);
      if (time_signature_[0] != 0) meta(0, 0x58, time_signature_);
    } else {
      change = segments_.end();
    }
    for (const auto& e : evs) {
      for (; change != segments_.end() && change->tick <= e.tick; ++change) tempo(*change);
      delta_to(e.tick);
      const auto b = e.msg->bytes();
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
    for (; change != segments_.end(); ++change) tempo(*change);  // changes after the last event
    delta_to(last);
    out.insert(out.end(), {0xFF, 0x2F, 0x00});  // end of track
    const auto chunk = out.size() - len_at - 4;
    if (chunk > 0xFFFFFFFFu) throw std::length_error("tactus::midi: track longer than a MIDI file chunk can hold");
    const auto len = static_cast<std::uint32_t>(chunk);
    for (int i = 0; i < 4; ++i) out[len_at + std::size_t(i)] = std::uint8_t(len >> (24 - 8 * i));
  }

  int tpq_;
  std::vector<segment> segments_;             // tempo map: segments_[0] at tick 0, ticks ascending
  std::chrono::nanoseconds latest_change_{};  // of the last set_tempo(): later ones may not be earlier
  std::vector<track> tracks_;
  std::array<std::uint8_t, 4> time_signature_{};  // numerator 0: none set
  std::uint64_t skipped_ = 0;
};

}  // namespace tactus::midi
