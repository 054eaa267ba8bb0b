// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/metronome.hpp>
#include <tactus/midi/note.hpp>

#include "pattern.hpp"
#include "sound.hpp"
#include <asio/awaitable.hpp>

#include <cstdint>
#include <functional>
#include <system_error>

// The sequencer: a coroutine that awaits every 16th of the metronome and plays that step of the
// pattern, the same for the internal clock and for an external MIDI clock (the follower moves
// and pauses the metronome; the step comes from the beat position, so START plays step 0 and a
// Song Position Pointer lands on its step). Odd steps are swung: played swing x one step late,
// at that exact position of the metronome. Every note is a tactus::midi::async_note that ends on
// the grid (a drum hit at the next 16th, a bass note after its length, ties included), so the
// library ends it, also when the metronome pauses (STOP, a lost clock) or stops.

namespace drum_machine {

template <class Clock>
class player {
 public:
  using tick_type = tactus::basic_tick<Clock>;

  player(tactus::basic_metronome<Clock>& m, const pattern& p, sound<Clock>& s, double swing)
      : metro_(m), pattern_(p), sound_(s), swing_(swing) {}

  /// Called at every step played, with the step and its grid point (the terminal grid, the
  /// recording's tempo).
  void on_step(std::function<void(int, const tick_type&)> f) { on_step_ = std::move(f); }

  /// Plays `bars` bars of the metronome (0: for ever; a pattern shorter or longer than a bar
  /// repeats or runs on across them), then waits for their last notes to end. Returns early,
  /// with error() set, if a note cannot be sent.
  asio::awaitable<void> run(long bars = 0) {
    const std::int64_t steps = std::int64_t(bars) * metro_.meter().beats_per_bar() * steps_per_beat;
    for (std::int64_t played = 0; steps == 0 || played < steps; ++played) {
      const auto t = co_await metro_.next_tick();
      if (error_) co_return;
      const int step = step_at(t.position);
      if (on_step_) on_step_(step, t);
      auto start = t.position;
      if (swing_ > 0 && step % 2 == 1) {
        start += tactus::beats{1, steps_per_beat} * swing_;
        const auto swung = co_await metro_.at(start, tactus::on_pause::end);
        if (swung.position < start) continue;  // STOP meanwhile: the step is not played
      }
      play(step, t.position);
    }
    co_await metro_.at(last_end_, tactus::on_pause::end);  // the last notes end on the grid (or at a STOP)
  }

  /// The first error a note met (the MIDI port went away), if any.
  std::error_code error() const noexcept { return error_; }

  /// The step of the pattern played at beat position `p`.
  int step_at(tactus::beats p) const {
    const auto n = static_cast<std::int64_t>(pattern_.steps());
    const auto i = floor_div(p, tactus::beats{1, steps_per_beat});
    return static_cast<int>((i % n + n) % n);
  }

 private:
  // Step `step` of the grid point at `grid`: each note ends on the grid, `length` steps on.
  void play(int step, tactus::beats grid) {
    const tactus::beats one_step{1, steps_per_beat};
    for (const auto& d : pattern_.drums)
      if (const int velocity = d.steps[step]) note(sound_.drums(), d.key, velocity, grid + one_step);
    if (!pattern_.bass.empty())
      if (const auto& n = pattern_.bass[step]; n.length > 0)
        note(sound_.bass(), n.key, n.velocity, grid + one_step * n.length);
  }

  void note(typename sound<Clock>::part& part, int key, int velocity, tactus::beats end) {
    if (end > last_end_) last_end_ = end;
    tactus::midi::async_note_until(part, metro_, part.channel(), key, velocity, end, [this](std::error_code ec) {
      if (ec && ec != asio::error::operation_aborted && !error_) error_ = ec;
    });
  }

  tactus::basic_metronome<Clock>& metro_;
  const pattern& pattern_;
  sound<Clock>& sound_;
  double swing_;
  std::function<void(int, const tick_type&)> on_step_;
  tactus::beats last_end_{0};
  std::error_code error_;
};

}  // namespace drum_machine
