// SPDX-License-Identifier: BSL-1.0
#include <tactus/midi/message.hpp>

#include <cstdio>

// The package test's MIDI consumer: links tactus::midi (so the package must bring RtMidi along)
// and uses an installed MIDI header.

int main() {
  static_assert(tactus::midi::message_length(0x90) == 3, "a note-on is three bytes");
  static_assert(tactus::midi::message_length(0xF8) == 1, "a clock is one byte");
  if (tactus::midi::message_length(0xC0) != 2) {
    std::fprintf(stderr, "consumer_midi: wrong length for a program change\n");
    return 1;
  }
  std::printf("consumer_midi: tactus::midi headers and link interface usable\n");
  return 0;
}
