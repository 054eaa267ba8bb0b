// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/output.hpp>
#include <tactus/midi/ports.hpp>

#include "pattern.hpp"
#include "sound.hpp"

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

// The drum machine's MIDI ports: whether there is a backend at all, the --list output, and the
// parts' outputs (a port by name, or a virtual one for a synth to connect to).

namespace drum_machine {

/// Whether a MIDI backend answers here (a JACK server, an ALSA sequencer).
inline bool midi_reachable() {
  try {
    (void)tactus::midi::available_api();
    return true;
  } catch (const tactus::midi::backend_unavailable&) {
    return false;
  }
}

/// --list: the patterns and the MIDI ports. Returns the exit status.
inline int list_patterns_and_ports() {
  namespace midi = tactus::midi;
  std::puts("patterns:");
  for (auto& b : builtins) std::printf("  %s\n", std::string(b.name).c_str());
  if (!midi_reachable()) return std::puts("no MIDI backend: no JACK server running and no ALSA sequencer"), 0;
  std::printf("MIDI output ports (%s):\n", std::string(midi::to_string(midi::available_api())).c_str());
  const auto show = [](const std::vector<std::string>& names) {
    if (names.empty()) std::puts("  (none)");
    for (auto& name : names) std::printf("  %s\n", name.c_str());
  };
  show(midi::output_ports());
  std::puts("MIDI input ports:");
  show(midi::input_ports());
  return 0;
}

/// A part's output: the port named (by any part of its name), or a virtual port
/// drum_machine_<part>:out.
inline std::shared_ptr<tactus::midi::output> open_output(asio::any_io_executor ex,
                                                         const std::optional<std::string>& name,
                                                         const std::string& part) {
  namespace midi = tactus::midi;
  midi::output_options o{.client_name = "drum_machine_" + part};
  return name ? std::make_shared<midi::output>(ex, *name, o)
              : std::make_shared<midi::output>(ex, midi::virtual_port, o);
}

/// The sound's port for an output (none for a null one): notes scheduled at their time with
/// send_at, the output's own panic.
inline port<std::chrono::steady_clock> to_port(std::shared_ptr<tactus::midi::output> out) {
  if (!out) return {};
  return {[out](const tactus::midi::message& m) { out->send(m); },
          [out](const tactus::midi::message& m, std::chrono::steady_clock::time_point t) { out->send_at(m, t); },
          [out] { out->panic(); }, std::chrono::nanoseconds(out->lookahead())};
}

}  // namespace drum_machine
