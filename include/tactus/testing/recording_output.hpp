// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/message.hpp>
#include <tactus/midi/note_tracker.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

// A MIDI output for tests: it records every message with the time it was sent on `Clock` (with
// testing::manual_clock, the exact virtual time) and tracks notes like a real port, so a test
// can check what a clock master, async_note or a whole application sent, and that no note hangs.
// It is a midi::scheduled_output: send_at records the time asked for (the time a native JACK
// port would write the message at), or now, counted late, when that time has passed:
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

/// Satisfies midi::note_output and midi::scheduled_output. Thread-safe: no. Never fails, unless
/// told to (fail_sends).
template <class Clock = std::chrono::steady_clock>
class recording_output {
 public:
  using time_point = typename Clock::time_point;
  using duration = typename Clock::duration;
  struct event {
    time_point time;  ///< when it goes out: Clock::now() for send, the time asked for by send_at
    midi::message msg;
    time_point queued{};     ///< Clock::now() when it was handed over
    bool scheduled = false;  ///< by send_at
  };

  /// Records `m` at Clock::now() and tracks its notes. Throws std::runtime_error while
  /// fail_sends(true) (a port that went away).
  void send(const midi::message& m) {
    if (failing_) throw std::runtime_error("tactus::testing::recording_output: send failed (fail_sends)");
    const auto now = Clock::now();
    events_.push_back({now, m, now, false});
    notes_.track(m);
  }

  /// Records `m` at `t` (at Clock::now() when `t` has passed, counted in late()) and tracks its
  /// notes at once, as midi::output::send_at does. events() keeps the order of the calls; see
  /// events_by_time(). Throws as send().
  void send_at(const midi::message& m, time_point t) {
    if (failing_) throw std::runtime_error("tactus::testing::recording_output: send failed (fail_sends)");
    const auto now = Clock::now();
    if (t < now) ++late_;
    events_.push_back({std::max(t, now), m, now, true});
    notes_.track(m);
  }

  /// How far ahead senders hand messages to send_at (default 5 ms, as midi::output_options).
  duration lookahead() const noexcept { return lookahead_; }
  void set_lookahead(duration d) noexcept { lookahead_ = d; }
  /// send_at calls whose time had passed.
  std::uint64_t late() const noexcept { return late_; }

  /// events(), ordered by the time each goes out (stable: the order of the calls among equals),
  /// as a receiver would see them.
  std::vector<event> events_by_time() const {
    auto v = events_;
    std::stable_sort(v.begin(), v.end(), [](const event& a, const event& b) { return a.time < b.time; });
    return v;
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
  duration lookahead_ = std::chrono::duration_cast<duration>(std::chrono::milliseconds(5));
  std::uint64_t late_ = 0;
};

}  // namespace tactus::testing
