// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/metronome.hpp>

#include "pattern.hpp"
#include "sound.hpp"
#include <asio/awaitable.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <vector>

// The sequencer: what happens on each 16th of the metronome. It is the metronome's on_tick
// callback, the same for the internal clock and for an external MIDI clock (the follower moves
// and pauses the metronome; the step comes from the beat position, so START plays step 0 and a
// Song Position Pointer lands on its step). Each step first ends the notes of the steps before
// (a drum hit lasts one step, a bass note its length, ties included), then plays its own. Odd
// steps are swung: delayed by swing x one step, awaiting that position of the metronome inside the
// callback (which lets the grid go on meanwhile, and follows a followed clock's tempo).

namespace drum_machine {

class player {
 public:
  player(const pattern& p, note_sink& sink, double swing, tactus::metronome& metro)
      : pattern_(p), sink_(sink), swing_(swing), metro_(metro) {}

  /// The step of the pattern a grid point plays.
  int step_at(const tactus::tick& b) const {
    const auto n = static_cast<std::int64_t>(pattern_.steps());
    const auto i = floor_div(b.position, tactus::beats{1, steps_per_beat});
    return static_cast<int>((i % n + n) % n);
  }

  /// Ends the notes due at `b` (those of the steps before). Call first on every grid point.
  void end_notes(const tactus::tick& b) {
    for (int key : sounding_drums_) sink_.note_off(part::drums, key, b.scheduled);
    sounding_drums_.clear();
    if (bass_key_ >= 0 && --bass_left_ <= 0) {
      sink_.note_off(part::bass, bass_key_, b.scheduled);
      bass_key_ = -1;
    }
  }

  /// Plays step `step` at `b` (after the swing delay on odd steps). Returns early, playing
  /// nothing, if silence() is called meanwhile.
  asio::awaitable<void> play(int step, tactus::tick b) {
    auto when = b.scheduled;
    if (swing_ > 0 && step % 2 == 1) {
      const auto epoch = epoch_;
      const auto swung = co_await metro_.at(b.position + tactus::beats{1, steps_per_beat} * swing_);
      if (epoch != epoch_) co_return;  // stopped, lost or quitting meanwhile
      when = swung.scheduled;
    }
    for (const auto& d : pattern_.drums) {
      if (const int velocity = d.steps[step]) {
        sink_.note_on(part::drums, d.key, velocity, when);
        sounding_drums_.push_back(d.key);
      }
    }
    if (!pattern_.bass.empty()) {
      const auto& n = pattern_.bass[step];
      if (n.length > 0) {
        if (bass_key_ >= 0) sink_.note_off(part::bass, bass_key_, when);
        sink_.note_on(part::bass, n.key, n.velocity, when);
        bass_key_ = n.key;
        bass_left_ = n.length;
      }
    }
  }

  /// Ends every note now and sends panic (STOP, lost clock, quitting); a swung step waiting
  /// to play is dropped.
  void silence() {
    ++epoch_;
    sounding_drums_.clear();
    bass_key_ = -1;
    sink_.silence();
  }

 private:
  const pattern& pattern_;
  note_sink& sink_;
  double swing_;
  tactus::metronome& metro_;
  std::vector<int> sounding_drums_;
  int bass_key_ = -1;
  int bass_left_ = 0;
  unsigned epoch_ = 0;
};

}  // namespace drum_machine
