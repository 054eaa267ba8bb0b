// SPDX-License-Identifier: BSL-1.0
// What the README and the headers' usage comments show is what the test suite compiles and runs.
// Every ```cpp block of README.md must be a contiguous run of lines of a program in
// examples/snippets/ (each built and run as a test of its own, see tests/CMakeLists.txt), and every
// usage block of a public header (after an empty `//` line, comment lines indented by two or more
// spaces: `//   code`) must appear, line by line in order, in one of them ("..." lines stand for
// code left out). A newcomer copies
// these first; one crashed before this test existed.
#include "support/catch.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

std::vector<std::string> read_lines(const fs::path& p) {
  std::ifstream in(p);
  REQUIRE(in);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

// The non-blank lines of a file, trimmed.
std::vector<std::string> code_lines(const fs::path& p) {
  std::vector<std::string> out;
  for (const auto& l : read_lines(p))
    if (auto t = trim(l); !t.empty()) out.push_back(t);
  return out;
}

struct snippet {
  std::string where;  // file:line
  std::vector<std::string> lines;
};

std::vector<snippet> readme_blocks(const fs::path& readme) {
  std::vector<snippet> out;
  const auto lines = read_lines(readme);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (trim(lines[i]) != "```cpp") continue;
    snippet s{readme.filename().string() + ":" + std::to_string(i + 1), {}};
    for (++i; i < lines.size() && trim(lines[i]) != "```"; ++i)
      if (auto t = trim(lines[i]); !t.empty()) s.lines.push_back(t);
    out.push_back(std::move(s));
  }
  return out;
}

// A usage example: after an empty `//` line, a run of comment lines indented by two or more
// spaces, the first not a bullet ("- ") of prose.
std::vector<snippet> header_blocks(const fs::path& header) {
  std::vector<snippet> out;
  const auto lines = read_lines(header);
  auto indented = [&](std::size_t k) {
    const auto& l = lines[k];
    return l.rfind("//  ", 0) == 0 && l.find_first_not_of(' ', 2) != std::string::npos;
  };
  for (std::size_t i = 1; i < lines.size(); ++i) {
    if (trim(lines[i - 1]) != "//" || !indented(i) || trim(lines[i].substr(2)).rfind("- ", 0) == 0) continue;
    snippet s{header.string() + ":" + std::to_string(i + 1), {}};
    for (; i < lines.size() && indented(i); ++i)
      if (auto t = trim(lines[i].substr(2)); t != "...") s.lines.push_back(t);
    out.push_back(std::move(s));
  }
  return out;
}

bool contiguous_in(const std::vector<std::string>& needle, const std::vector<std::string>& hay) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

bool in_order_in(const std::vector<std::string>& needle, const std::vector<std::string>& hay) {
  auto it = hay.begin();
  for (const auto& n : needle) {
    it = std::find(it, hay.end(), n);
    if (it == hay.end()) return false;
    ++it;
  }
  return true;
}

std::vector<std::pair<std::string, std::vector<std::string>>> programs() {
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  for (const auto& e : fs::recursive_directory_iterator(TACTUS_SNIPPETS_DIR))
    if (e.path().extension() == ".cpp") out.emplace_back(e.path().filename().string(), code_lines(e.path()));
  return out;
}

std::string show(const snippet& s) {
  std::ostringstream o;
  o << s.where << ":\n";
  for (const auto& l : s.lines) o << "    " << l << '\n';
  return o.str();
}

}  // namespace

TEST_CASE("every C++ block of the README is a program of examples/snippets that the suite runs") {
  const auto progs = programs();
  REQUIRE(progs.size() >= 4);
  const auto blocks = readme_blocks(fs::path(TACTUS_SOURCE_DIR) / "README.md");
  REQUIRE(blocks.size() >= 2);
  for (const auto& b : blocks) {
    INFO(show(b));
    const bool found =
        std::any_of(progs.begin(), progs.end(), [&](const auto& p) { return contiguous_in(b.lines, p.second); });
    CHECK(found);
  }
}

TEST_CASE("every usage example in a header comment is in a program of examples/snippets that the suite runs") {
  const auto progs = programs();
  int checked = 0;
  for (const auto& e : fs::recursive_directory_iterator(fs::path(TACTUS_SOURCE_DIR) / "include")) {
    // Internals (detail/) are not what users copy; their sketches may name private parts.
    if (e.path().extension() != ".hpp" || e.path().parent_path().filename() == "detail") continue;
    for (const auto& b : header_blocks(e.path())) {
      INFO(show(b));
      const bool found =
          std::any_of(progs.begin(), progs.end(), [&](const auto& p) { return in_order_in(b.lines, p.second); });
      CHECK(found);
      ++checked;
    }
  }
  CHECK(checked >= 5);
}
