// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/beats.hpp>
#include <tactus/metronome.hpp>
#include <tactus/midi/message.hpp>
#include <tactus/midi/note_tracker.hpp>
#include <tactus/midi/smf.hpp>
#include <tactus/tempo.hpp>

#include <cmath>
#include <filesystem>
#include <functional>
#include <optional>
#include <utility>

// Where the notes go. Each part (drums, bass) is a note output for tactus::midi::async_note: it
// sends to its MIDI port (none without a MIDI backend) and to the recording, and tracks its
// sounding notes with the library's note_tracker, so panic() ends exactly those. The recording is
// a Standard MIDI File in musical time: each event at its beat position on the metronome (480
// ticks a beat; a note played a little late is filed at its grid point), with the tempo changes
// of a followed clock, starting at the bar of the first note.

namespace drum_machine {

/// Sends a message to a MIDI port (a tactus::midi::output, a test's recording_output), or nothing.
using port = std::function<void(const tactus::midi::message&)>;

template <class Clock>
class sound {
 public:
  /// One part: satisfies tactus::midi::note_output.
  class part {
   public:
    part(sound& s, port p, int channel, int track) : sound_(s), port_(std::move(p)), channel_(channel), track_(track) {}
    void send(const tactus::midi::message& m) {
      if (port_) port_(m);
      notes_.track(m);
      sound_.record(m, track_);
    }
    int open_count(int channel, int key) const noexcept { return notes_.open_count(channel, key); }
    int channel() const noexcept { return channel_; }
    /// Ends every note this part sounds, then CC 123 and CC 64 on its channel.
    void panic() {
      notes_.end_all([this](const tactus::midi::message& m) { send(m); });
    }

   private:
    sound& sound_;
    port port_;
    tactus::midi::note_tracker notes_;
    int channel_, track_;
  };

  /// Channels are 0-based. `record`: the file close() writes, or none. `swing`: the player's,
  /// for the recording's grid.
  sound(tactus::basic_metronome<Clock>& m, port drums, int drums_channel, port bass, int bass_channel,
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

  // Where an event sent now belongs: the player's events (16ths, swung 16ths, note ends) happen
  // on its grid, never early and at most a little late (the wake-up latency), so an event within
  // 1/64 beat after a grid point is recorded exactly there. Others (a STOP's note-offs) where
  // they happened.
  tactus::beats musical_position() const {
    const auto now = metro_.position();
    const tactus::beats step{1, steps_per_beat};
    const auto grid = step * floor_div(now, step);
    const auto candidate = swing_ > tactus::beats{0} && grid + swing_ <= now ? grid + swing_ : grid;
    auto tolerance = tactus::beats{1, 64};
    if (swing_ > tactus::beats{0}) tolerance = std::min({tolerance, swing_ * 0.5, (step - swing_) * 0.5});
    return now - candidate <= tolerance ? candidate : now;
  }

  void record(const tactus::midi::message& m, int track) {
    if (closed_) return;
    const auto at = musical_position();
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
