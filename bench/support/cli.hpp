// SPDX-License-Identifier: BSL-1.0
#pragma once

#include "../../examples/cli.hpp"  // finite_range, whole_range: the examples' checks
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <type_traits>

// Benchmark support: parses the command line with CLI11 the same way in every benchmark.
// --help prints the generated help on stdout and exits 0; any bad argument (unknown option,
// `600x` for a number, a value out of its range) prints one line on stderr,
// "<name>: <what is wrong> (try --help)", and exits with status 2 (examples/cli.hpp).
//
//   CLI::App app{"metronome_lateness: how late the metronome wakes", "metronome_lateness"};
//   app.add_option("--beats", beats, "beats per series")->check(tactus_bench::range(2, 100'000'000));
//   tactus_bench::parse(app, argc, argv);

namespace tactus_bench {

/// A value from `lo` to `hi`: a finite number for a floating-point range (CLI::Range lets nan
/// through: every comparison with it is false), a whole number ("2x" and "2.5" are not) else.
template <class T>
CLI::Validator range(T lo, T hi) {
  if constexpr (std::is_floating_point_v<T>) return examples::finite_range(lo, hi);
  else return examples::whole_range(lo, hi);
}

/// examples::parse, exiting: 0 after --help, 2 after a mistake (one line on stderr).
inline void parse(CLI::App& app, int argc, char** argv) {
  if (const auto status = examples::parse(app, argc, argv)) std::exit(*status);
}

}  // namespace tactus_bench
