// SPDX-License-Identifier: BSL-1.0
#pragma once

#include "../cli.hpp"
#include "pattern.hpp"
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

// The command line (CLI11): every value checked before anything opens or plays. A bad one is one
// line on stderr and exit status 2; --help prints to stdout and exits 0.

namespace drum_machine {

/// A command line that parses but does not fit (a --drum-key for a row the pattern lacks): one
/// line and status 2, as a bad value.
struct usage_error : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

struct options {
  std::string clock = "internal";
  double bpm = 120;
  std::optional<std::string> clock_port, drums_port, bass_port, record, pattern_file;
  std::string pattern = "four-on-the-floor";
  int drums_channel = 10, bass_channel = 1;
  std::vector<std::pair<std::string, int>> drum_keys;
  double swing = 0;
  std::optional<long> bars;
  bool list = false;

  bool names_a_port() const { return clock_port || drums_port || bass_port; }
};

inline options parse_options(int argc, char** argv) {
  options o;
  CLI::App app{
      "A drum machine and a bass line on tactus's metronome, on its own tempo or following an external "
      "24 ppqn MIDI clock. Without a MIDI backend it plays to the terminal and records to drum_machine.mid.",
      "drum_machine"};
  app.get_formatter()->column_width(26);
  app.add_option("--clock", o.clock, "internal, or follow an external MIDI clock (midi)")
      ->check(CLI::IsMember({"internal", "midi"}))
      ->capture_default_str();
  app.add_option("--bpm", o.bpm, "internal tempo")->check(examples::finite_range(20, 400))->capture_default_str();
  std::string clock_port, drums_port, bass_port, record, pattern_file;
  auto* cp = app.add_option("--clock-port", clock_port, "MIDI input with the clock (default: a virtual input)");
  auto* dp = app.add_option("--drums-port", drums_port,
                            "MIDI output for the drums, by any part of its name (default: a virtual output "
                            "drum_machine_drums:out)");
  auto* bp = app.add_option("--bass-port", bass_port, "MIDI output for the bass (may be the drums' port)");
  app.add_option("--drums-channel", o.drums_channel, "1..16")
      ->check(examples::whole_range(1, 16))
      ->capture_default_str();
  app.add_option("--bass-channel", o.bass_channel, "1..16")->check(examples::whole_range(1, 16))->capture_default_str();
  std::vector<std::string> remaps;
  app.add_option("--drum-key", remaps, "NAME=KEY: play row NAME on another key, e.g. kick=60 (repeatable)")
      ->check([](const std::string& v) -> std::string {
        const auto eq = v.find('=');
        int key = -1;
        if (eq == 0 || eq == std::string::npos || !CLI::detail::lexical_cast(v.substr(eq + 1), key) || key < 0 ||
            key > 127)
          return "wants NAME=KEY with KEY 0..127, e.g. kick=60, not " + v;
        return "";
      });
  auto* rec = app.add_option("--record", record, "also record to this Standard MIDI File");
  app.add_option("--pattern", o.pattern, "four-on-the-floor, breakbeat, electro or acid")
      ->check([](const std::string& name) -> std::string {
        try {
          (void)builtin_pattern(name);
          return "";
        } catch (const std::exception& e) {
          return e.what();
        }
      })
      ->capture_default_str();
  auto* pf = app.add_option("--pattern-file", pattern_file, "a pattern in the text format (see patterns/*.txt)")
                 ->check(CLI::ExistingFile);
  app.add_option("--swing", o.swing, "delay every other 16th by this fraction of a 16th")
      ->check(examples::finite_range(0, 0.5))
      ->capture_default_str();
  long bars = 0;
  auto* b = app.add_option("--bars", bars,
                           "play N bars and exit; 0: until Ctrl-C (a MIDI STOP pauses, it does not end the "
                           "program). Default 0, or 8 without a MIDI backend")
                ->check(examples::whole_range(0, 1'000'000));
  app.add_flag("--list", o.list, "list the patterns and MIDI ports, then exit");
  if (const auto status = examples::parse(app, argc, argv)) std::exit(*status);
  auto given = [](CLI::Option* opt, std::string& v) {
    return opt->count() ? std::optional(std::move(v)) : std::nullopt;
  };
  o.clock_port = given(cp, clock_port);
  o.drums_port = given(dp, drums_port);
  o.bass_port = given(bp, bass_port);
  o.record = given(rec, record);
  o.pattern_file = given(pf, pattern_file);
  if (b->count()) o.bars = bars;
  for (const auto& r : remaps) {  // checked above
    int key = 0;
    CLI::detail::lexical_cast(r.substr(r.find('=') + 1), key);
    o.drum_keys.emplace_back(r.substr(0, r.find('=')), key);
  }
  return o;
}

/// The pattern asked for, its keys remapped. Throws with the file name and line of a bad pattern.
inline pattern load_pattern(const options& o) {
  pattern p;
  if (o.pattern_file) {
    std::ifstream in(*o.pattern_file);
    if (!in) throw std::runtime_error("cannot open pattern file " + *o.pattern_file);
    p = parse_pattern(in, *o.pattern_file);
    if (p.name.empty()) p.name = *o.pattern_file;
  } else {
    p = builtin_pattern(o.pattern);
  }
  for (const auto& [name, key] : o.drum_keys) {
    auto row = std::find_if(p.drums.begin(), p.drums.end(), [&](auto& d) { return d.name == name; });
    if (row == p.drums.end()) throw usage_error("--drum-key " + name + ": the pattern has no row " + name);
    row->key = key;
  }
  return p;
}

/// The recording's file can be written: checked before anything plays, not after the performance.
inline void check_writable(const std::filesystem::path& file) {
  const bool existed = std::filesystem::exists(file);
  std::ofstream probe(file, std::ios::app);
  if (!probe)
    throw std::runtime_error("--record " + file.string() + ": cannot write there (" + std::strerror(errno) + ")");
  probe.close();
  if (!existed) std::filesystem::remove(file);
}

}  // namespace drum_machine
