// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/message.hpp>

#include <chrono>
#include <concepts>

// What the MIDI layer's senders need of an output: the clock master sends to any
// message_output, async_note plays on any note_output; a scheduled_output also sends at a time
// (send_at), which the clock master, async_note and midi::async_send_at use to place messages at
// the exact time of their grid position. midi::output (a MIDI port),
// testing::recording_output (virtual time) and an application's own type (a tee to a port and a
// file, a test double) all qualify:
//
//     struct printer {
//       tactus::midi::note_tracker notes;
//       void send(const tactus::midi::message& m) { std::puts(m.to_string().c_str()); notes.track(m); }
//       int open_count(int channel, int key) const { return notes.open_count(channel, key); }
//     };
//     static_assert(tactus::midi::note_output<printer>);

namespace tactus::midi {

/// Sends a message now: `out.send(m)`. It may throw to report an error.
template <class T>
concept message_output = requires(T& out, const message& m) {
  out.send(m);
};

/// A message_output that knows which notes sound: `out.open_count(channel, key)` is how many
/// note-ons of that key wait for a note-off (0 once a panic ended them). async_note sends its
/// note-off only while the note is still open.
template <class T>
concept note_output = message_output<T> && requires(const T& out, int channel, int key) {
  { out.open_count(channel, key) } -> std::convertible_to<int>;
};

/// A message_output that sends at a time: `out.send_at(m, t)` returns at once and sends `m` when
/// `t` comes (midi::output on the native JACK backend: at the frame of `t`), at once when `t` has
/// passed. It may throw to report an error. Senders hand a message over `out.lookahead()` before
/// its time when the output has one (a duration), else detail::default_lookahead before.
template <class T, class TimePoint = std::chrono::steady_clock::time_point>
concept scheduled_output = message_output<T> && requires(T& out, const message& m, TimePoint t) {
  out.send_at(m, t);
};

namespace detail {

inline constexpr std::chrono::milliseconds default_lookahead{5};

/// How far ahead of its time a message is handed to `out.send_at`.
template <class T>
auto lookahead_of(const T& out) {
  if constexpr (requires { out.lookahead(); })
    return std::chrono::duration_cast<std::chrono::nanoseconds>(out.lookahead());
  else return std::chrono::nanoseconds(default_lookahead);
}

}  // namespace detail

}  // namespace tactus::midi
