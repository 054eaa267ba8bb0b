// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

// What the small examples share about their command line (CLI11): every value is checked before
// anything is opened or played; --help prints to stdout and exits 0; a bad value or an unknown
// option prints one line to stderr and exits 2.
//
//   CLI::App app{"hello_metronome: prints each beat"};
//   double bpm = 120;
//   app.add_option("--bpm", bpm, "tempo")->check(examples::finite_range(1, 1000));
//   if (auto code = examples::parse(app, argc, argv)) return *code;

namespace examples {

/// Exit status of a bad command line (as getopt-based tools and CLI11's own convention for usage).
inline constexpr int usage_error = 2;

/// A number from `lo` to `hi`. Unlike CLI::Range it rejects nan (every comparison with nan is
/// false, so a range check lets it through) and infinities.
inline CLI::Validator finite_range(double lo, double hi) {
  auto text_of = [](double v) {  // 1000000, not 1e+06
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.15g", v);
    return std::string(buf);
  };
  const std::string range = "a number from " + text_of(lo) + " to " + text_of(hi);
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        double v = 0;
        if (!CLI::detail::lexical_cast(text, v) || !std::isfinite(v) || !(v >= lo && v <= hi))
          return "wants " + range + ", got '" + text + "'";
        return {};
      },
      "[" + text_of(lo) + " - " + text_of(hi) + "]");
}

/// A whole number from `lo` to `hi` ("2x" and "2.5" are not).
inline CLI::Validator whole_range(long long lo, long long hi) {
  const std::string range = "a whole number from " + std::to_string(lo) + " to " + std::to_string(hi);
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        long long v = 0;
        if (!CLI::detail::lexical_cast(text, v) || v < lo || v > hi) return "wants " + range + ", got '" + text + "'";
        return {};
      },
      "[" + std::to_string(lo) + " - " + std::to_string(hi) + "]");
}

/// A file the program will write later (a plot, a recording): refused now, before anything runs,
/// when it cannot be created or appended to there. A file that did not exist is not left behind.
inline CLI::Validator writable_file() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const bool existed = std::filesystem::exists(text);
        if (std::ofstream probe(text, std::ios::app); !probe)
          return "cannot write " + text + " (" + std::strerror(errno) + ")";
        if (!existed) std::filesystem::remove(text);
        return {};
      },
      "FILE");
}

/// Parses the command line. Returns the status to exit with (0 after --help, usage_error after a
/// mistake, which gets one line on stderr), or nullopt to go on.
inline std::optional<int> parse(CLI::App& app, int argc, const char* const* argv) {
  try {
    app.parse(argc, argv);
    return std::nullopt;
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);  // the help text, on stdout; 0
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    // CLI11 checks the required options before the unknown ones: `midi_panic --bogus` would say
    // "--port is required" about a command line whose mistake is --bogus.
    if (dynamic_cast<const CLI::RequiredError*>(&e) && !app.remaining().empty())
      what = "unknown argument '" + app.remaining().front() + "'";
    for (auto& c : what)
      if (c == '\n') c = ' ';
    std::fprintf(stderr, "%s: %s (try --help)\n", app.get_name().c_str(), what.c_str());
    return usage_error;
  }
}

}  // namespace examples
