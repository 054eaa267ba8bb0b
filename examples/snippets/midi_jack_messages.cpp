// SPDX-License-Identifier: BSL-1.0
// The usage comment of jack_messages.hpp, whole: libjack's lines discarded, then sent to a log
// of the program's own. Runs with or without a JACK server: without one, ports.hpp says why in
// one line (backend_unavailable) and libjack prints nothing.
// Laid out as the documentation shows it (tests/snippets_test.cpp compares), so not formatted:
// clang-format off
#include <tactus/midi/jack_messages.hpp>
#include <tactus/midi/ports.hpp>
#include <cstdio>
#include <exception>

static void my_log(const char* line) { std::fprintf(stderr, "[libjack] %s\n", line); }

int main() {
  tactus::midi::set_jack_message_handler(nullptr);       // discard them (what the examples do)
  tactus::midi::set_jack_message_handler([](tactus::midi::jack_message_level, const char* line) {
    my_log(line);                                        // any thread: see jack_message_handler
  });
  try {
    std::printf("%zu MIDI input ports\n", tactus::midi::input_ports().size());
  } catch (const tactus::midi::backend_unavailable& e) {
    std::printf("%s\n", e.what());                       // one line, quoting libjack's reason
  }
  return 0;
}
