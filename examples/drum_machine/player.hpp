// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/metronome.hpp>
#include <tactus/midi/note.hpp>

#include "pattern.hpp"
#include "sound.hpp"
#include <asio/awaitable.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <system_error>
#include <utility>
#include <vector>

// The sequencer: a coroutine that awaits every 16th of the metronome and schedules the pattern's
// notes one step ahead, each note-on and note-off at its exact grid position
// (tactus::midi::async_send_at): the output gets it a lookahead before its time, for that very
// time (on the native JACK backend, its frame). The same for the internal clock and for an
// external MIDI clock (the follower moves and pauses the metronome; the step comes from the beat
// position, so START plays step 0 and a Song Position Pointer lands on its step). Odd steps are
// swung: at swing x one step after their 16th. Each note ends on the grid (a drum hit at the next
// 16th, a bass note after its length, ties included); when the clock stops or is lost,
// stop_sounding() drops what is scheduled and ends what sounds (main.cpp calls it), and the
// parts' panic ends every note when the metronome stops.

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
      const std::int64_t index = floor_div(t.position, one_step);
      if (on_step_) on_step_(step_at(t.position), t);
      std::erase_if(pending_, [&](const auto& p) { return p.first <= t.position; });  // handed over by now
      if (scheduled_ != index) play(index);  // the first step of a run or after a pause: now
      if (steps == 0 || played + 1 < steps) play(index + 1);
      scheduled_ = index + 1;
    }
    co_await metro_.at(last_end_, tactus::on_pause::end);  // the last notes end on the grid (or at a STOP)
  }

  /// Drops the note-ons and note-offs scheduled and not yet handed to the output, then ends every
  /// note (the parts' panic, which also drops what the outputs had scheduled). For a clock that stops or is lost: the next step played after it resumes is played
  /// at once. Executor only.
  void stop_sounding() {
    for (auto& p : std::exchange(pending_, {})) p.second->emit(asio::cancellation_type::terminal);
    scheduled_ = -1;
    sound_.panic();
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
  static constexpr tactus::beats one_step{1, steps_per_beat};

  // The notes of the 16th `index` (at position index / 4), each ending on the grid, `length`
  // steps on.
  void play(std::int64_t index) {
    const tactus::beats grid = one_step * index;
    const int step = step_at(grid);
    const tactus::beats start = swing_ > 0 && step % 2 == 1 ? grid + one_step * swing_ : grid;
    for (const auto& d : pattern_.drums)
      if (const int velocity = d.steps[step]) note(sound_.drums(), d.key, velocity, start, grid + one_step);
    if (!pattern_.bass.empty())
      if (const auto& n = pattern_.bass[step]; n.length > 0)
        note(sound_.bass(), n.key, n.velocity, start, grid + one_step * n.length);
  }

  // A note as two messages, each handed to the part's send_at a lookahead before its exact time
  // (tactus::midi::async_send_at). Both are scheduled together, a step ahead: a note-off is always
  // scheduled before the note-on of the next step at the same position, so it goes out first.
  // (Not midi::async_note_at: it hands the note-off over a lookahead before the note's end, so
  // whether it or the next note-on at that time went first would rest on which wait resumed
  // first.) pending_ is only what stop_sounding() must drop; what sounds is the parts' own
  // tactus::midi::note_tracker (sound.hpp), which ends it on every exit path.
  void note(typename sound<Clock>::part& part, int key, int velocity, tactus::beats start, tactus::beats end) {
    if (end > last_end_) last_end_ = end;
    send_at(part, start, tactus::midi::message::note_on(part.channel(), key, velocity));
    send_at(part, end, tactus::midi::message::note_off(part.channel(), key));
  }

  void send_at(typename sound<Clock>::part& part, tactus::beats at, const tactus::midi::message& m) {
    auto cancel = std::make_shared<asio::cancellation_signal>();
    pending_.emplace_back(at, cancel);
    auto done = [this, cancel](std::error_code ec) {
      if (ec && ec != asio::error::operation_aborted && !error_) error_ = ec;
    };
    tactus::midi::async_send_at(part, metro_, at, m, asio::bind_cancellation_slot(cancel->slot(), std::move(done)));
  }

  tactus::basic_metronome<Clock>& metro_;
  const pattern& pattern_;
  sound<Clock>& sound_;
  double swing_;
  std::function<void(int, const tick_type&)> on_step_;
  tactus::beats last_end_{0};
  std::int64_t scheduled_ = -1;  // the 16th whose notes were scheduled ahead
  // The messages not yet handed to the output (by their position), for stop_sounding().
  std::vector<std::pair<tactus::beats, std::shared_ptr<asio::cancellation_signal>>> pending_;
  std::error_code error_;
};

}  // namespace drum_machine
