// SPDX-License-Identifier: BSL-1.0
#pragma once

// The one place where Catch2's generation shows. Every test includes this instead of a Catch2
// header and is written in Catch2 v3's spellings: Catch::Approx,
// Catch::Matchers::ContainsSubstring, Catch::Matchers::StartsWith, Catch::StringMaker,
// Catch::Detail::stringify, GENERATE. Under Catch2 v2 (Debian 12's 2.13) this header provides the v3 names
// that 2.13 lacks; under v3 (Debian 13, Ubuntu 24.04) it includes the headers those names live
// in. tests/CMakeLists.txt finds Catch2 3 first, else 2.13, and says which through
// TACTUS_TEST_CATCH2_MAJOR. The tests' main (catch_main.cpp) defines CATCH_CONFIG_RUNNER before
// including this header, and gets Catch::Session either way.
//
// TACTUS_SKIP(reason): a test (or section) whose precondition is missing on this machine ends
// here, visibly: Catch2 3's SKIP (3.3 and later; reported as skipped), else (2.13 has no skip) a WARN
// "skipped: <reason>" that every reporter prints, then a return. Never a silent `return;`.

#if !defined(TACTUS_TEST_CATCH2_MAJOR)
#error "TACTUS_TEST_CATCH2_MAJOR: link the test to tactus_catch_main (tests/CMakeLists.txt)"
#endif

#if TACTUS_TEST_CATCH2_MAJOR >= 3

#if defined(CATCH_CONFIG_RUNNER)
#include <catch2/catch_session.hpp>
#endif
#include <catch2/catch_approx.hpp>
#include <catch2/catch_test_macros.hpp>
#include <catch2/catch_tostring.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#else  // Catch2 2.13: one header holds everything

#include <catch2/catch.hpp>

#include <string>

namespace Catch {
// v3 moved Approx out of Detail (2.13 has it as Catch::Detail::Approx and ::Approx).
using Detail::Approx;
namespace Matchers {
// v3 renamed the substring matcher: its Matchers::Contains matches elements of a range.
inline StdString::ContainsMatcher ContainsSubstring(const std::string& str,
                                                    CaseSensitive::Choice cs = CaseSensitive::Yes) {
  return Contains(str, cs);
}
}  // namespace Matchers
}  // namespace Catch

#endif

#if defined(SKIP)  // Catch2 3.3 and later
#define TACTUS_SKIP(...) SKIP(__VA_ARGS__)
#else
#define TACTUS_SKIP(...)              \
  do {                                \
    WARN("skipped: " << __VA_ARGS__); \
    return;                           \
  } while (false)
#endif
