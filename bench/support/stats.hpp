// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

// The percentiles the benchmarks print: p50, p99 (nearest rank, rounding down) and the maximum of
// a sample; all zero for an empty one.

namespace tactus_bench {

struct percentiles {
  double p50 = 0, p99 = 0, max = 0;
};

inline percentiles summarise(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, std::size_t(q * double(v.size())))]; };
  return {at(0.50), at(0.99), v.back()};
}

}  // namespace tactus_bench
