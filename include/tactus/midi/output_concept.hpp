// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/message.hpp>

#include <concepts>

// What the MIDI layer's senders need of an output: the clock master sends to any
// message_output, async_note plays on any note_output. midi::output (an RtMidi port),
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

}  // namespace tactus::midi
