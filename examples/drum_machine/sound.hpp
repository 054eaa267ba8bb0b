// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/beats.hpp>
#include <tactus/metronome.hpp>
#include <tactus/midi/message.hpp>
#include <tactus/midi/note_tracker.hpp>
#include <tactus/midi/smf.hpp>
#include <tactus/tempo.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <optional>
#include <utility>

// Where the notes go. Each part (drums, bass) is a scheduled note output for
// tactus::midi::async_note_at: send_at hands a message to its MIDI port for the exact time of its
// grid position (on the native JACK backend, the frame of that time), send sends now (a panic);
// both go to the recording too. Each part tracks its sounding notes with the library's
// note_tracker, so panic() ends exactly those, after the port has dropped what it still had
// scheduled. The recording is a Standard MIDI File in musical time: each event at its beat
// position on the metronome (480 ticks a beat), with the tempo changes of a followed clock,
// starting at the bar of the first note.

namespace drum_machine {

/// A part's MIDI port (a tactus::midi::output, a test's recording_output), or none (all empty).
template <class Clock>
struct port {
  /// Sends now.
  std::function<void(const tactus::midi::message&)> send;
  /// Sends at a time (see tactus::midi::scheduled_output).
  std::function<void(const tactus::midi::message&, typename Clock::time_point)> send_at;
  /// Drops what is scheduled (note-offs go out at once) and ends every note sounding there (see
  /// tactus::midi::output::panic); when empty, the part's own note-offs go to send.
  std::function<void()> panic;
  /// How far ahead of their time notes are handed to send_at (output_options::lookahead).
  std::chrono::nanoseconds lookahead{std::chrono::milliseconds(5)};
};

template <class Clock>
class sound {
 public:
  using time_point = typename Clock::time_point;

  /// One part: satisfies tactus::midi::note_output and tactus::midi::scheduled_output.
  class part {
   public:
    part(sound& s, port<Clock> p, int channel, int track)
        : sound_(s), port_(std::move(p)), channel_(channel), track_(track) {}
    void send(const tactus::midi::message& m) {
      if (port_.send) port_.send(m);
      notes_.track(m);
      sound_.record(m, track_, sound_.metro_.position());
    }
    void send_at(const tactus::midi::message& m, time_point t) {
      if (port_.send_at) port_.send_at(m, t);
      else if (port_.send) port_.send(m);
      notes_.track(m);
      sound_.record(m, track_, sound_.metro_.position(t));
    }
    std::chrono::nanoseconds lookahead() const noexcept { return port_.lookahead; }
    int open_count(int channel, int key) const noexcept { return notes_.open_count(channel, key); }
    int channel() const noexcept { return channel_; }
    /// Ends every note this part sounds, then CC 123 and CC 64 on its channel: a port that can
    /// panic drops what it had scheduled and ends its notes itself (the note-offs are recorded
    /// here), any other gets our note-offs.
    void panic() {
      if (port_.panic) port_.panic();
      notes_.end_all([this](const tactus::midi::message& m) {
        if (!port_.panic && port_.send) port_.send(m);
        sound_.record(m, track_, sound_.metro_.position());
      });
    }

   private:
    sound& sound_;
    port<Clock> port_;
    tactus::midi::note_tracker notes_;
    int channel_, track_;
  };

  /// Channels are 0-based. `record`: the file close() writes, or none. `swing`: the player's,
  /// for the recording's grid.
  sound(tactus::basic_metronome<Clock>& m, port<Clock> drums, int drums_channel, port<Clock> bass, int bass_channel,
        std::optional<std::filesystem::path> record, double swing = 0)
      : metro_(m),
        swing_(tactus::beats{1, steps_per_beat} * swing),
        drums_(*this, std::move(drums), drums_channel, 0),
        bass_(*this, std::move(bass), bass_channel, 1),
        record_(std::move(record)) {
    smf_.set_track_name(0, "drums");
    smf_.set_track_name(1, "bass");
    smf_.set_time_signature(4, 4);
  }
  sound(const sound&) = delete;
  sound& operator=(const sound&) = delete;

  part& drums() noexcept { return drums_; }
  part& bass() noexcept { return bass_; }

  /// Ends every sounding note of both parts (STOP, a lost clock, the end).
  void panic() {
    drums_.panic();
    bass_.panic();
  }

  /// Records the tempo at beat position `at` if it moved more than 0.05 BPM since the last one
  /// recorded (a followed clock's estimate jitters by less). Call once a beat.
  void tempo(tactus::bpm t, tactus::beats at) {
    if (recorded_tempo_ && std::abs(t.value() - recorded_tempo_->value()) <= 0.05) return;
    const auto tick = origin_ ? tick_of(at) : 0;      // before the first note: the tempo at the start
    if (tick < smf_.tempo_map().back().tick) return;  // a Song Position Pointer moved back: keep the map in order
    recorded_tempo_ = t;
    smf_.set_tempo_at_tick(tick, t);
  }

  /// panic(), then writes the recording. Idempotent. Returns the file written, if any.
  std::optional<std::filesystem::path> close() {
    if (closed_) return std::nullopt;
    panic();
    closed_ = true;
    if (!record_) return std::nullopt;
    smf_.write(*record_);
    return record_;
  }

  long notes_played() const noexcept { return notes_; }
  const tactus::midi::smf_writer& recording() const noexcept { return smf_; }

 private:
  static constexpr int ticks_per_beat = 480;

  std::uint64_t tick_of(tactus::beats p) const {
    const double t = std::round((p - *origin_).count() * ticks_per_beat);
    return t > 0 ? std::uint64_t(t) : 0;  // a Song Position Pointer may move before the origin
  }

  // Where an event at position `now` belongs: the player's events (16ths, swung 16ths, note
  // ends) are scheduled at their grid positions, which a position computed back from their time
  // may miss by a rounding either way, and a note sent now (the first of a run) is a little late,
  // so an event within 1/64 beat of a grid point is recorded exactly there. Others (a STOP's
  // note-offs) where they happened.
  tactus::beats musical_position(tactus::beats now) const {
    const tactus::beats step{1, steps_per_beat};
    const auto grid = step * floor_div(now, step);
    auto tolerance = tactus::beats{1, 64};
    if (swing_ > tactus::beats{0}) tolerance = std::min({tolerance, swing_ * 0.5, (step - swing_) * 0.5});
    for (const auto c : {grid, grid + swing_, grid + step})
      if ((now < c ? c - now : now - c) <= tolerance) return c;
    return now;
  }

  void record(const tactus::midi::message& m, int track, tactus::beats when) {
    if (closed_) return;
    const auto at = musical_position(when);
    if (!origin_) {
      const auto bar = metro_.meter().bar_length();
      origin_ = bar * floor_div(at, bar);
    }
    smf_.add_at_tick(tick_of(at), m, track);
    if (m.is_note_on()) ++notes_;
  }

  tactus::basic_metronome<Clock>& metro_;
  tactus::beats swing_;
  part drums_, bass_;
  std::optional<std::filesystem::path> record_;
  tactus::midi::smf_writer smf_{ticks_per_beat};
  std::optional<tactus::beats> origin_;
  std::optional<tactus::bpm> recorded_tempo_;
  long notes_ = 0;
  bool closed_ = false;
};

}  // namespace drum_machine
