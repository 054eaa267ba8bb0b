// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/message.hpp>
#include <tactus/midi/rtmidi_close.hpp>

#include <RtMidi.h>
#include <string>

// Test support: a raw RtMidi sender, independent of tactus's output, for the input's tests: a
// virtual JACK output port "<client>:src" that the input under test connects to.
//
//   tactus_tests::rtmidi_sender tx("in-sender");
//   tactus::midi::input in(ex, "in-sender:src", opts);

namespace tactus_tests {

struct rtmidi_sender {
  explicit rtmidi_sender(const std::string& client) : out(RtMidi::UNIX_JACK, client) { out.openVirtualPort("src"); }
  ~rtmidi_sender() { tactus::midi::quiesce(out); }  // RtMidi's own close can crash libjack
  rtmidi_sender(const rtmidi_sender&) = delete;
  rtmidi_sender& operator=(const rtmidi_sender&) = delete;
  void send(const tactus::midi::message& m) { out.sendMessage(m.bytes().data(), m.bytes().size()); }
  RtMidiOut out;
};

}  // namespace tactus_tests
