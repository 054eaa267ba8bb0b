// SPDX-License-Identifier: BSL-1.0
// The drum machine's pattern model and text format (examples/drum_machine/pattern.hpp): the
// built-in patterns and the example files parse, and bad input fails naming its line.
#include "../examples/drum_machine/pattern.hpp"
#include "support/catch.hpp"

#include <filesystem>
#include <fstream>

using namespace drum_machine;
using Catch::Matchers::ContainsSubstring;
using Catch::Matchers::StartsWith;

namespace {
int hits(const pattern& p, const std::string& row) {
  for (auto& d : p.drums)
    if (d.name == row)
      return static_cast<int>(std::count_if(d.steps.begin(), d.steps.end(), [](int v) { return v > 0; }));
  return -1;
}
std::string error_of(std::string_view text) {
  try {
    (void)parse_pattern(text, "t.txt");
  } catch (const pattern_error& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST_CASE("drum rows: x hit, X accent, . rest, blanks and | group steps", "[drum_machine]") {
  const auto p = parse_pattern(R"(
# a comment
name: test groove
kick:  X... x... | X... x...   # trailing comment
hat:   x.x.x.x.x.x.x.x.
49:    X...............
)");
  CHECK(p.name == "test groove");
  REQUIRE(p.drums.size() == 3);
  CHECK(p.steps() == 16);
  CHECK(p.drums[0].key == 36);
  CHECK(p.drums[0].steps[0] == accent_velocity);
  CHECK(p.drums[0].steps[4] == normal_velocity);
  CHECK(p.drums[0].steps[1] == 0);
  CHECK(hits(p, "kick") == 4);
  CHECK(hits(p, "hat") == 8);
  CHECK(p.drums[1].key == 42);
  CHECK(p.drums[2].key == 49);
  CHECK(p.bass.empty());
}

TEST_CASE("bass line: note names, numbers, rests, holds and accents", "[drum_machine]") {
  const auto p = parse_pattern("kick: x...\nbass: C2 - D#2! 40\n");
  REQUIRE(p.bass.size() == 4);
  CHECK(p.bass[0].key == 36);
  CHECK(p.bass[0].length == 2);  // held over the '-'
  CHECK(p.bass[1].length == 0);
  CHECK(p.bass[2].key == 39);
  CHECK(p.bass[2].velocity == accent_velocity);
  CHECK(p.bass[3].key == 40);
  CHECK(p.bass[3].length == 1);
  CHECK(note_number("C4") == 60);
  CHECK(note_number("A-1") == 9);
  CHECK(note_number("Eb3") == 51);
  CHECK(note_number("G9") == 127);
  CHECK_FALSE(note_number("G#9"));
  CHECK_FALSE(note_number("H2"));
  CHECK_FALSE(note_number("128"));
}

TEST_CASE("bad patterns fail naming the line", "[drum_machine]") {
  CHECK(error_of("kick: x...x...\n\nsnare: x...x..\n") == "t.txt:3: snare has 7 steps, the pattern has 8 (line 1)");
  CHECK(error_of("kick: x..o\n") == "t.txt:1: unexpected 'o' in kick: use x (hit), X (accent) or . (rest)");
  CHECK_THAT(error_of("kick x...\n"), StartsWith("t.txt:1: expected \"name: steps\""));
  CHECK_THAT(error_of("# c\ncowbell: x...\n"), StartsWith("t.txt:2: unknown row \"cowbell\""));
  CHECK_THAT(error_of("kick: x...\nbass: C2 . Q2 .\n"), StartsWith("t.txt:2: bad bass note \"Q2\""));
  CHECK_THAT(error_of("kick: x...\nbass: - . . .\n"), StartsWith("t.txt:2: '-' holds a note"));
  CHECK_THAT(error_of("kick: x...\nbass: C2 . . .\nbass: C2 . . .\n"), StartsWith("t.txt:3: a second bass"));
  CHECK_THAT(error_of("kick: x...\n36: x...\n"), StartsWith("t.txt:2: a second row for key 36"));
  CHECK(error_of("# nothing\n") == "t.txt:1: no rows: the pattern is empty");
  CHECK_THAT(error_of("kick: " + std::string(65, 'x') + "\n"), ContainsSubstring("65 steps, expected 1 to 64"));
}

TEST_CASE("every built-in pattern and example file parses, a bar or more with a bass line", "[drum_machine]") {
  for (auto& b : builtins) {
    INFO(b.name);
    const auto p = builtin_pattern(b.name);
    CHECK(p.steps() % 16 == 0);
    CHECK(p.bass.size() == static_cast<std::size_t>(p.steps()));
    CHECK(hits(p, "kick") > 0);
  }
  CHECK_THROWS_WITH(builtin_pattern("polka"), ContainsSubstring("four-on-the-floor"));

  const auto dir = std::filesystem::path(__FILE__).parent_path() / "../examples/drum_machine/patterns";
  int files = 0;
  for (auto& entry : std::filesystem::directory_iterator(dir)) {
    INFO(entry.path());
    std::ifstream in(entry.path());
    const auto p = parse_pattern(in, entry.path().string());
    CHECK(p.steps() % 16 == 0);
    ++files;
  }
  CHECK(files >= 2);
}
