// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/message.hpp>
#include <tactus/midi/note_tracker.hpp>

#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <vector>

// A MIDI output for tests: it records every message with the time it was sent on `Clock` (with
// testing::manual_clock, the exact virtual time) and tracks notes like a real port, so a test
// can check what a clock master, async_note or a whole application sent, and that no note hangs:
//
//     using clock = tactus::testing::manual_clock;
//     tactus::testing::recording_output<clock> out;
//     tactus::basic_metronome<clock> m{io.get_executor(), tactus::bpm{120}};
//     asio::co_spawn(io, m.run(), tactus::rethrow);
//     tactus::midi::async_note(out, m, 9, 36, 100, tactus::beats{1, 2}, [](std::error_code) {});
//     tactus::testing::advance(io, std::chrono::seconds(1));  // virtual: returns at once
//     for (const auto& e : out.events())                      // 0 ms: note_on ch=10 ..., 250 ms: note_off ch=10 ...
//       std::printf("%lld ms: %s\n", ms(e.time), e.msg.to_string().c_str());
//     return out.open_notes() == 0 ? 0 : 1;

namespace tactus::testing {

/// Satisfies midi::note_output. Thread-safe: no. Never fails, unless told to (fail_sends).
template <class Clock = std::chrono::steady_clock>
class recording_output {
 public:
  using time_point = typename Clock::time_point;
  struct event {
    time_point time;
    midi::message msg;
  };

  /// Records `m` at Clock::now() and tracks its notes. Throws std::runtime_error while
  /// fail_sends(true) (a port that went away).
  void send(const midi::message& m) {
    if (failing_) throw std::runtime_error("tactus::testing::recording_output: send failed (fail_sends)");
    events_.push_back({Clock::now(), m});
    notes_.track(m);
  }

  /// Ends every sounding note as midi::output::panic() does (note-offs, CC 123, CC 64).
  void panic() {
    notes_.end_all([this](const midi::message& m) { send(m); });
  }

  int open_count(int channel, int key) const noexcept { return notes_.open_count(channel, key); }
  std::size_t open_notes() const noexcept { return notes_.open_notes(); }
  const midi::note_tracker& notes() const noexcept { return notes_; }

  /// Everything sent, in order.
  const std::vector<event>& events() const noexcept { return events_; }
  void clear() { events_.clear(); }

  /// While true, send() throws (to test error paths).
  void fail_sends(bool on) noexcept { failing_ = on; }

 private:
  std::vector<event> events_;
  midi::note_tracker notes_;
  bool failing_ = false;
};

}  // namespace tactus::testing
