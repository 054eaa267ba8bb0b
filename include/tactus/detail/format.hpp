// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <cstdio>
#include <string>

// Numbers in error messages as a person writes them: 1e-09, 600, 0.25 (std::to_string prints
// 1e-9 as 0.000000).

namespace tactus::detail {

inline std::string format_number(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  return buf;
}

}  // namespace tactus::detail
