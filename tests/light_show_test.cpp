// SPDX-License-Identifier: BSL-1.0
// The light show as a user runs it, a child process: a short show ends by itself with status 0;
// SIGINT and SIGTERM end it within a second, status 0, its last line showing every servo at
// rest and every LED off; a bad option or a device that is not there, one line and status 2;
// --plot draws a PNG.
#include "support/catch.hpp"
#include "support/child_process.hpp"

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#if !defined(LIGHT_SHOW_EXE)
#error "the example's path (see tests/CMakeLists.txt)"
#endif

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using Catch::Matchers::ContainsSubstring;

namespace {

fs::path scratch(const std::string& name) { return tactus_tests::scratch_dir("light_show_test") / name; }

using tactus_tests::slurp;

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

struct run_result {
  std::optional<int> status;
  std::string out, err;
};

run_result run(std::vector<std::string> args, std::chrono::seconds limit = 20s) {
  static int n = 0;
  const auto out = scratch("out-" + std::to_string(++n)), err = scratch("err-" + std::to_string(n));
  args.insert(args.begin(), LIGHT_SHOW_EXE);
  tactus_tests::child_process p(args,
                                {.stdout_file = out.string(), .stderr_file = err.string(), .stop_signal = SIGKILL});
  run_result r;
  r.status = p.wait(limit);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

void check_safe_state_last(const std::string& out) {
  const auto l = lines(out);
  REQUIRE_FALSE(l.empty());
  INFO(out);
  CHECK_THAT(l.back(), ContainsSubstring("safe state:"));
  CHECK(l.back().find("90.0") != std::string::npos);  // at rest
  CHECK(l.back().find('*') == std::string::npos);     // every LED off
  CHECK(l.back().find(" o ") == std::string::npos);
}

}  // namespace

TEST_CASE("light_show: a short show plays its bars and ends at rest, status 0") {
  const auto r = run({"--bpm", "240", "--bars", "2"});
  REQUIRE(r.status);
  CHECK(*r.status == 0);
  CHECK(r.err.empty());
  const auto l = lines(r.out);
  CHECK(l.size() == 9);  // 8 beats, then the safe state
  CHECK_THAT(r.out,
             ContainsSubstring("bar 2 beat 1  [=================|   ] 150.0 [===|                 ]  30.0  * . . ."));
  check_safe_state_last(r.out);
}

TEST_CASE("light_show: SIGINT and SIGTERM end it within a second, servos at rest and LEDs off, status 0") {
  for (int sig : {SIGINT, SIGTERM}) {
    INFO((sig == SIGINT ? "SIGINT" : "SIGTERM"));
    const auto out = scratch(std::string("signal-") + std::to_string(sig));
    tactus_tests::child_process p({LIGHT_SHOW_EXE, "--bars", "0"},
                                  {.stdout_file = out.string(), .stop_signal = SIGKILL});
    // Mid-show: after its second beat (a servo half-way, an LED on, perhaps).
    for (int i = 0; i < 1000 && lines(slurp(out)).size() < 2; ++i) std::this_thread::sleep_for(5ms);
    REQUIRE(lines(slurp(out)).size() >= 2);
    const auto sent = std::chrono::steady_clock::now();
    p.signal(sig);
    const auto status = p.wait(5s);
    REQUIRE(status);
    CHECK(*status == 0);
    CHECK(std::chrono::steady_clock::now() - sent < 1s);
    check_safe_state_last(slurp(out));
  }
  SECTION("just after start, too") {
    const auto out = scratch("signal-early");
    tactus_tests::child_process p({LIGHT_SHOW_EXE}, {.stdout_file = out.string(), .stop_signal = SIGKILL});
    std::this_thread::sleep_for(20ms);
    p.signal(SIGTERM);
    const auto status = p.wait(5s);
    REQUIRE(status);
    // Before main() installed its handler the default action ends it (status 128 + 15).
    CHECK((*status == 0 || *status == 128 + SIGTERM));
  }
}

TEST_CASE("light_show: a bad option or a missing device gets one line and status 2") {
  for (std::vector<std::string> args : {std::vector<std::string>{"--bpm", "0"},
                                        {"--bpm", "nan"},
                                        {"--servos", "2.5"},
                                        {"--sysfs", "pwmchip0"},
                                        {"--no-such-flag"},
                                        {"--sysfs", "/nonexistent/pwmchip0:0"},
                                        {"--pca9685", "/dev/i2c-97"},
                                        {"--gpio", "/dev/gpiochip97:17"},
                                        {"--plot", "/nonexistent-dir/show.png"}}) {
    INFO(args[0] << " " << (args.size() > 1 ? args[1] : ""));
    const auto r = run(args);
    REQUIRE(r.status);
    CHECK(*r.status == 2);
    CHECK(lines(r.err).size() == 1);
    CHECK(r.out.empty());
    if (args.size() > 1 && args[1].find('/') != std::string::npos) {
      const auto path = args[1].substr(0, args[1].rfind(':'));
      CHECK_THAT(r.err, ContainsSubstring(path.empty() ? args[1] : path));
    }
  }
}

TEST_CASE("light_show: --plot draws the servo trajectories to a PNG") {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) TACTUS_SKIP("gnuplot is not installed (gnuplot-nox)");
  const auto png = scratch("show.png");
  const auto r = run({"--bpm", "300", "--bars", "2", "--plot", png.string()});
  REQUIRE(r.status);
  CHECK(*r.status == 0);
  REQUIRE(fs::exists(png));
  const auto head = slurp(png).substr(0, 8);
  CHECK(head == std::string("\x89PNG\r\n\x1a\n", 8));
}
