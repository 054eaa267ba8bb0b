// SPDX-License-Identifier: BSL-1.0
// beats.hpp's usage comment, whole: exact positions, and doubles at the edge.
// Laid out as the documentation shows it (tests/snippets_test.cpp compares), so not formatted:
// clang-format off
#include <tactus/beats.hpp>
#include <cstdio>

int main() {
  const tactus::beats bar_5{16};                       // beat 16, exactly
  const tactus::beats triplet{1, 3};                   // a third of a beat, exactly
  const tactus::beats swing = tactus::beats{0.55} * 0.5;   // from doubles: the nearest unit
  const double edge = (bar_5 + triplet).count();       // back to double beats, at the API's edge
  std::printf("%.6f %.6f\n", edge, swing.count());
  return triplet * 3 == tactus::beats{1} ? 0 : 1;
}
