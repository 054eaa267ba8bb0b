// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <nlohmann/json.hpp>

#include <cmath>
#include <iostream>

// Benchmark support: the one JSON object a benchmark prints, through nlohmann-json. ordered_json
// keeps the keys in the order they are written (scripts/bench and docs/*.json read them by name;
// the order is for the reader). Figures are rounded to the decimals they are meaningful to.

namespace tactus_bench {

using json = nlohmann::ordered_json;

/// `v` rounded to `decimals` decimal places (printed as the shortest form of that double).
inline double rounded(double v, int decimals) {
  const double scale = std::pow(10.0, decimals);
  return std::isfinite(v) ? std::round(v * scale) / scale : v;
}

/// Prints `j` as one line on stdout.
inline void print(const json& j) { std::cout << j.dump() << std::endl; }

}  // namespace tactus_bench
