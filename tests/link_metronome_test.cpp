// SPDX-License-Identifier: BSL-1.0
// examples/link_metronome as child processes, two of them in one Link session on the loopback of
// this test's private network namespace (the children inherit it; skipped, saying why, where it
// cannot be made): its JSON lines, a session joined at the first one's tempo, SIGINT and SIGTERM
// ending it within a second with status 0, and a bad option. Real time: structural facts only.
#include "support/catch.hpp"
#include "support/child_process.hpp"
#include "support/private_network.hpp"
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using tactus_tests::child_process;

namespace {

std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

// Waits (real time, at most `limit`) until `file` holds `n` lines.
void wait_lines(const std::filesystem::path& file, std::size_t n, std::chrono::seconds limit = 10s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    const auto text = tactus_tests::slurp(file);
    if (static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) >= n) return;
    std::this_thread::sleep_for(20ms);
  }
}

}  // namespace

TEST_CASE("link_metronome --json joins a session at its tempo and ends on SIGINT and SIGTERM with status 0") {
  if (const auto why = tactus_tests::enter_private_network(); !why.empty()) TACTUS_SKIP(why);
  const auto dir = tactus_tests::scratch_dir("link_metronome_test");
  const auto first_out = dir / "first.json", second_out = dir / "second.json";
  child_process first({LINK_METRONOME_EXE, "--json", "--bpm", "200"}, {.stdout_file = first_out.string()});
  wait_lines(first_out, 2);  // its session exists
  child_process second({LINK_METRONOME_EXE, "--json", "--bpm", "90"}, {.stdout_file = second_out.string()});
  wait_lines(second_out, 6);

  const auto sig = GENERATE(SIGINT, SIGTERM);
  const auto asked = std::chrono::steady_clock::now();
  second.signal(sig);
  first.signal(sig);
  const auto second_status = second.wait(2s);
  const auto first_status = first.wait(2s);
  const auto took = std::chrono::steady_clock::now() - asked;
  REQUIRE(second_status);
  REQUIRE(first_status);
  CHECK(*second_status == 0);
  CHECK(*first_status == 0);
  CHECK(took < 1s);
  std::printf("figure: link_metronome pair ended %.0f ms after the signal\n",
              std::chrono::duration<double, std::milli>(took).count());

  const auto a = json_lines(tactus_tests::slurp(first_out));
  const auto b = json_lines(tactus_tests::slurp(second_out));
  REQUIRE(a.size() >= 2);
  REQUIRE(b.size() >= 6);
  for (const auto* lines : {&a, &b})
    for (const auto& j : *lines) {
      REQUIRE(j.contains("beat"));
      REQUIRE(j.contains("bpm"));
      REQUIRE(j.contains("peers"));
      // Measured when the beat fired: never before it (Link's microseconds: 1e-3 beat at most).
      const double beat = j["beat"].get<double>();
      CHECK(beat - std::floor(beat + 1e-3) >= -1e-3);
    }
  // The second joined the first's session: its tempo, one peer.
  CHECK(b.back()["peers"].get<int>() == 1);
  CHECK(std::abs(b.back()["bpm"].get<double>() - 200.0) < 0.01);
  CHECK(a.back()["peers"].get<int>() == 1);
}

TEST_CASE("link_metronome refuses a bad option with one line on stderr and status 2") {
  const auto dir = tactus_tests::scratch_dir("link_metronome_test");
  const auto err = dir / "bad.txt";
  const auto bad = GENERATE(as<std::string>{}, "600x", "nan", "0");
  child_process p({LINK_METRONOME_EXE, "--bpm", bad}, {.stdout_file = err.string(), .stderr_too = true});
  const auto status = p.wait(5s);
  REQUIRE(status);
  CHECK(*status == 2);
  const auto text = tactus_tests::slurp(err);
  CHECK(std::count(text.begin(), text.end(), '\n') == 1);
  CHECK_THAT(text, Catch::Matchers::ContainsSubstring("--bpm"));
}
