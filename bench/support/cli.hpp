// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>

// Benchmark support: parses the command line with CLI11 the same way in every benchmark.
// --help prints the generated help on stdout and exits 0; any bad argument (unknown option,
// `600x` for a number, a value out of its range) prints one line on stderr,
// "<name>: <what is wrong> (--help for usage)", and exits with status 2.
//
//   CLI::App app{"metronome_lateness: how late the metronome wakes", "metronome_lateness"};
//   app.add_option("--beats", beats, "beats per series")->check(CLI::Range(2, 100'000'000));
//   tactus_bench::parse(app, argc, argv);

namespace tactus_bench {

inline void parse(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    std::exit(app.exit(e));
  } catch (const CLI::CallForAllHelp& e) {
    std::exit(app.exit(e));
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s: %s (--help for usage)\n", app.get_name().c_str(), e.what());
    std::exit(2);
  }
}

}  // namespace tactus_bench
