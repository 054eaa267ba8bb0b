// SPDX-License-Identifier: BSL-1.0
// examples/sensor_daemon as a user runs it, a child process: --seconds ends it by itself; SIGINT
// and SIGTERM, just after start and while it runs, end it within a second with status 0 and every
// cleanup run and printed, in reverse order of registration; the readings add up (sent = received
// + dropped + left in the queue: nothing lost uncounted); a bad option is one line and status 2.
#include "support/catch.hpp"
#include "support/child_process.hpp"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#if !defined(SENSOR_DAEMON_EXE)
#error "the example's path (see tests/CMakeLists.txt)"
#endif

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
namespace fs = std::filesystem;
using Catch::Matchers::ContainsSubstring;

namespace {

fs::path scratch() {
  static const fs::path dir = tactus_tests::scratch_dir("sensor_daemon_test");
  return dir;
}

using tactus_tests::slurp;

class daemon_process {
 public:
  explicit daemon_process(std::vector<std::string> args)
      : out_(scratch() / ("out-" + std::to_string(++count_))),
        err_(scratch() / ("err-" + std::to_string(count_))),
        process_(with_exe(std::move(args)),
                 {.stdout_file = out_.string(), .stderr_file = err_.string(), .stop_signal = SIGKILL}) {}
  std::optional<int> wait(clock_type::duration timeout) { return process_.wait(timeout); }
  void signal(int s) { process_.signal(s); }
  std::string out() const { return slurp(out_); }
  std::string err() const { return slurp(err_); }
  bool wait_for(const std::string& text, clock_type::duration timeout = 10s) const {
    const auto end = clock_type::now() + timeout;
    while (out().find(text) == std::string::npos && clock_type::now() < end) std::this_thread::sleep_for(5ms);
    return out().find(text) != std::string::npos;
  }

 private:
  static std::vector<std::string> with_exe(std::vector<std::string> args) {
    args.insert(args.begin(), SENSOR_DAEMON_EXE);
    return args;
  }
  fs::path out_, err_;
  tactus_tests::child_process process_;
  static inline int count_ = 0;
};

// The shutdown's steps, in order, as printed; and the readings' counts add up.
void check_clean_end(const std::string& out, const std::string& why) {
  INFO("stdout: " << out);
  const std::vector<std::string> steps = {"shutdown: " + why,
                                          "shutdown: work stopped in ",
                                          "shutdown: cleanup 'stop the producer thread' done in ",
                                          "shutdown: cleanup 'park the stage' done in ",
                                          "readings: ",
                                          "shutdown: cleanup 'write the summary' done in "};
  std::size_t at = 0;
  for (const auto& s : steps) {
    const auto found = out.find(s, at);
    INFO("step: " << s);
    CHECK(found != std::string::npos);
    if (found != std::string::npos) at = found + s.size();
  }
  std::smatch m;
  const std::regex counts("readings: (\\d+) sent, (\\d+) received, (\\d+) dropped, (\\d+) left in the queue");
  REQUIRE(std::regex_search(out, m, counts));
  const auto n = [&](int i) { return std::stoull(m[i].str()); };
  CHECK(n(1) == n(2) + n(3) + n(4));
  CHECK(n(1) > 0);
  std::printf("figure: sensor_daemon: %llu readings sent, %llu received, %llu dropped, %llu left\n", n(1), n(2), n(3),
              n(4));
}

}  // namespace

TEST_CASE("sensor_daemon: --seconds ends it by itself, every cleanup run and printed, status 0") {
  daemon_process d({"--seconds", "1.2", "--bpm", "240"});
  const auto status = d.wait(15s);
  INFO("stderr: " << d.err());
  REQUIRE(status.has_value());
  CHECK(*status == 0);
  CHECK(d.err().empty());
  check_clean_end(d.out(), "time limit reached");
  CHECK_THAT(d.out(), ContainsSubstring("bar 2: stage idle, "));  // a report every bar: 1 s at 240 BPM
}

TEST_CASE("sensor_daemon: SIGINT and SIGTERM end it within a second, every cleanup run and printed, status 0") {
  for (int sig : {SIGINT, SIGTERM}) {
    for (bool at_once : {true, false}) {
      INFO((sig == SIGINT ? "SIGINT" : "SIGTERM") << (at_once ? " at once" : " while running"));
      daemon_process d({"--bpm", "600", "--measure-every-ms", "50"});
      if (at_once) {
        std::this_thread::sleep_for(30ms);
      } else {
        REQUIRE(d.wait_for("bar 3:"));  // readings, measurements and reports are all going
      }
      d.signal(sig);
      const auto sent = clock_type::now();
      auto status = d.wait(1s);
      const auto took = std::chrono::duration<double>(clock_type::now() - sent).count();
      INFO("stdout: " << d.out() << "stderr: " << d.err() << "took " << took << " s");
      if (!status) status = d.wait(5s);
      REQUIRE(status.has_value());
      CHECK(took < 1.0);
      if (at_once && *status == 128 + sig) continue;  // the signal came before main() set up its handler
      CHECK(*status == 0);
      check_clean_end(d.out(), sig == SIGINT ? "SIGINT" : "SIGTERM");
    }
  }
}

TEST_CASE("sensor_daemon: a bad option gets one line on stderr and status 2") {
  for (std::vector<std::string> args : {std::vector<std::string>{"--seconds", "abc"},
                                        {"--bpm", "0"},
                                        {"--measure-every-ms", "2.5"},
                                        {"--no-such-option"}}) {
    INFO(args[0]);
    daemon_process d(args);
    const auto status = d.wait(10s);
    REQUIRE(status.has_value());
    CHECK(*status == 2);
    const auto err = d.err();
    CHECK(std::count(err.begin(), err.end(), '\n') == 1);
    CHECK_THAT(err, ContainsSubstring(args[0]));
    CHECK(d.out().empty());
  }
}
