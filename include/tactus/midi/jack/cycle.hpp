// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <chrono>
#include <cstdint>

// The time <-> frame arithmetic of one JACK cycle, apart from libjack so that it is tested in
// virtual time (tests/midi_jack_schedule_test.cpp). A cycle is what jack_get_cycle_times() says
// in the process callback: the cycle's first frame (current_frames) and the microseconds of it
// (current_usecs) and of the next cycle's first frame (next_usecs), converted from JACK's clock
// (CLOCK_MONOTONIC_RAW with jack2 on Linux) to std::chrono::steady_clock's microseconds by
// jack::current_cycle (client.hpp). The frames of the
// cycle, [start_frame, start_frame + nframes), cover the times [start, next): frame offset f
// stands for start + f * (next - start) / nframes, and a time t falls on offset
// floor((t - start) * nframes / (next - start)). The native input stamps an event with the time
// of its frame; the native output writes a message at the offset where its time falls.
//
// Also here: the detection of a repeated cycle (JACK2 runs a late client's cycle again, with the
// same first frame: the input drops what it delivers the second time) and the widening of JACK's
// 32-bit frame counter (it wraps after 24.9 hours at 48 kHz) to 64 bits.

namespace tactus::midi::jack {

/// One process cycle, as jack_get_cycle_times() reports it. Value type; realtime-safe.
struct cycle {
  std::int64_t start_frame = 0;  ///< current_frames (widened, see frame_widener)
  std::uint32_t nframes = 0;     ///< frames in this cycle (the process callback's argument)
  std::int64_t start_usecs = 0;  ///< current_usecs: the time of start_frame
  std::int64_t next_usecs = 0;   ///< next_usecs: the time of start_frame + nframes

  using time_point = std::chrono::steady_clock::time_point;

  static time_point from_usecs(std::int64_t us) noexcept { return time_point(std::chrono::microseconds(us)); }
  static std::int64_t to_nanos(time_point t) noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  }

  time_point start() const noexcept { return from_usecs(start_usecs); }
  time_point end() const noexcept { return from_usecs(next_usecs); }

  /// Whether the cycle is usable: frames in it, and its end after its start (JACK's DLL gives
  /// next > current; a broken report is treated as a cycle of zero length by offset_of).
  bool valid() const noexcept { return nframes > 0 && next_usecs > start_usecs; }

  /// The time of frame `offset` of this cycle (0 <= offset < nframes): the first nanosecond
  /// that offset_of() places on it, so that offset_of(time_of_offset(f)) == f.
  time_point time_of_offset(std::uint32_t offset) const noexcept { return time_of_frame(start_frame + offset); }

  /// The time of the absolute frame `frame` (usually of this cycle; the same rate outside it),
  /// rounded up to the nanosecond as time_of_offset.
  time_point time_of_frame(std::int64_t frame) const noexcept {
    if (nframes == 0) return start();
    const std::int64_t span_ns = (next_usecs - start_usecs) * 1000;
    const std::int64_t num = span_ns * (frame - start_frame), den = std::int64_t(nframes);
    const std::int64_t q = num / den;
    const std::int64_t ns = (num % den > 0) ? q + 1 : q;  // ceil (truncation rounds negatives up already)
    return start() + std::chrono::nanoseconds(ns);
  }

  /// Where `t` falls relative to this cycle.
  enum class placement {
    past,    ///< before start(): late, written at offset 0
    inside,  ///< in [start(), end()): written at offset_of(t)
    future,  ///< at or after end(): a later cycle's
  };

  placement place(time_point t) const noexcept {
    if (t < start()) return placement::past;
    if (!valid() || t >= end()) return placement::future;
    return placement::inside;
  }

  /// The frame offset where `t` falls: floor((t - start) * nframes / (next - start)), clamped to
  /// [0, nframes - 1] (0 for a time in the past).
  std::uint32_t offset_of(time_point t) const noexcept {
    if (!valid() || t <= start()) return 0;
    const std::int64_t span_ns = (next_usecs - start_usecs) * 1000;
    const std::int64_t d = to_nanos(t) - start_usecs * 1000;
    if (d >= span_ns) return nframes - 1;
    // d < span_ns (a few ms) and nframes <= 2^16 in practice: no overflow before 2^63.
    return std::uint32_t(d * std::int64_t(nframes) / span_ns);
  }
};

/// Widens JACK's 32-bit frame counter (jack_nframes_t, wrapping) to 64 bits by counting wraps.
/// One per client, used on its process thread only. Realtime-safe.
class frame_widener {
 public:
  std::int64_t operator()(std::uint32_t frames) noexcept {
    if (seen_ && frames < last_ && last_ - frames > 0x80000000u) high_ += std::int64_t(1) << 32;
    seen_ = true;
    last_ = frames;
    return high_ + frames;
  }

 private:
  bool seen_ = false;
  std::uint32_t last_ = 0;
  std::int64_t high_ = 0;
};

/// Tells a repeated cycle: JACK2 may run a client's cycle again with the same first frame (a
/// client that was late); its input buffers then hold the same events a second time. One per
/// client, on its process thread. Realtime-safe.
class repeat_detector {
 public:
  /// True when `start_frame` is the first frame of the previous cycle seen.
  bool repeated(std::int64_t start_frame) noexcept {
    const bool r = seen_ && start_frame == last_;
    seen_ = true;
    last_ = start_frame;
    return r;
  }

 private:
  bool seen_ = false;
  std::int64_t last_ = 0;
};

}  // namespace tactus::midi::jack
