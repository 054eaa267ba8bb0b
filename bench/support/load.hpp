// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <cstdio>
#include <fstream>
#include <string>

// The machine's load average, which every benchmark prints beside its figures (a figure taken
// while something else ran says so): loadavg() for the JSON, load_1m() to compare.

namespace tactus_bench {

/// The 1, 5 and 15 minute load averages as /proc/loadavg gives them ("0.52 0.61 0.70"); "" if
/// unreadable.
inline std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  if (!(f >> a >> b >> c)) return {};
  return a + " " + b + " " + c;
}

/// The 1 minute load average, or -1 if unreadable.
inline double load_1m() {
  double l = -1;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &l) != 1) l = -1;
    std::fclose(f);
  }
  return l;
}

}  // namespace tactus_bench
