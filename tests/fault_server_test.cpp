// SPDX-License-Identifier: BSL-1.0
// Issue 12, item 1: the JACK server dies mid-play (SIGKILL: no goodbye to its clients). Each
// program runs on a private JACK server of this test (never the fixture's), which is killed while
// it plays; the program must say in one line that the server went away and exit non-zero within a
// second, without spinning (its CPU time over that second), and a Ctrl-C right after the loss
// must still end it within a second. Before the fix the drum machine played on to nobody, said
// nothing, and later spun at 100 % in RtMidi's send.
#include "support/catch.hpp"
#include "support/fault_injection.hpp"
#include "support/private_network.hpp"

#include <chrono>
#include <csignal>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#if !defined(DRUM_MACHINE_EXE) || !defined(CLOCK_MASTER_EXE) || !defined(CLOCK_MONITOR_EXE)
#error "the examples' paths (see tests/CMakeLists.txt)"
#endif

using namespace std::chrono_literals;
using tactus_tests::example;
using tactus_tests::fault_clock;

namespace {

struct program {
  std::vector<std::string> args;
  std::string running;  // what it prints once it plays
  // Started first on the same server, when the program needs a port to send to (its args, and
  // what it prints once that port is open); not checked itself.
  std::vector<std::string> destination = {};
  std::string destination_ready = {};
};

// Starts `p` on a private server, kills the server while it plays, then (with `ctrl_c`) sends
// SIGINT 100 ms later; checks the program's end.
void kill_server_under(const program& p, bool ctrl_c) {
  INFO(p.args[0] << (ctrl_c ? ", then Ctrl-C" : ""));
  tactus_tests::private_jack server("fault-server");
  INFO("the private server " << server.name() << " (its log: " << server.log() << ")");
  REQUIRE(server.up());  // (as the fixture, it needs jackd: a missing one fails there first)
  std::optional<example> destination;
  if (!p.destination.empty()) {
    destination.emplace(p.destination, server.env());
    REQUIRE(destination->wait_for(p.destination_ready));
  }
  example e(p.args, server.env());
  REQUIRE(e.wait_for(p.running));
  std::this_thread::sleep_for(300ms);  // playing
  const auto cpu_before = tactus_tests::cpu_time(e.pid());
  REQUIRE(cpu_before);
  REQUIRE(server.kill());
  const auto killed = fault_clock::now();
  if (ctrl_c) {
    std::this_thread::sleep_for(100ms);
    e.signal(SIGINT);
  }
  auto status = e.wait(1s);
  const auto took = std::chrono::duration<double>(fault_clock::now() - killed).count();
  // CPU time over the second after the loss (or until its end): a spin shows here.
  const auto cpu_after = tactus_tests::cpu_time(e.pid());
  const double cpu = cpu_after ? (*cpu_after - *cpu_before).count() : -1;
  const auto err = e.err();
  INFO("stderr: " << err
                  << "stdout (last 400 chars): " << e.out().substr(e.out().size() > 400 ? e.out().size() - 400 : 0)
                  << "took " << took << " s, CPU " << cpu << " s in the second after the loss");
  if (status) {
    std::printf("figure: %s%s ended %.3f s after the server's SIGKILL\n", p.args[0].c_str(), ctrl_c ? " (Ctrl-C)" : "",
                took);
  } else {
    CHECK(cpu < 0.5);  // no spin while it hangs on
    e.signal(SIGINT);  // does Ctrl-C still end it?
    status = e.wait(1s);
    INFO("after a SIGINT: " << (status ? std::to_string(*status) : std::string("still running")));
    if (!status) status = e.wait(5s);  // reaped either way; the checks below fail
  }
  REQUIRE(status.has_value());
  CHECK(took < 1.0);
  if (!ctrl_c) CHECK(*status != 0);
  CHECK(tactus_tests::lines_with(err, "JACK server went away") == 1);
}

}  // namespace

TEST_CASE("fault: the JACK server killed under the drum machine") {
  const program p{{DRUM_MACHINE_EXE, "--bpm", "400"}, "drums:"};
  SECTION("it exits by itself") { kill_server_under(p, false); }
  SECTION("Ctrl-C right after the loss") { kill_server_under(p, true); }
}

TEST_CASE("fault: the JACK server killed under clock_master") {
  kill_server_under({{CLOCK_MASTER_EXE, "--bpm", "300"}, "clock at"}, false);
}

TEST_CASE("fault: the JACK server killed under clock_monitor") {
  kill_server_under({{CLOCK_MONITOR_EXE, "--virtual"}, "following"}, false);
}

#if defined(LINK_METRONOME_EXE)
TEST_CASE("fault: the JACK server killed under link_metronome --midi-clock-out") {
  // Link multicasts on every interface: in a network namespace with only loopback, as the Link
  // tests (the example, a child, inherits it). Its clock goes to clock_monitor's virtual input.
  if (const auto why = tactus_tests::enter_private_network(); !why.empty()) TACTUS_SKIP(why);
  kill_server_under({{LINK_METRONOME_EXE, "--bpm", "300", "--midi-clock-out", "tactus-clock:in"},
                     "in a Link session",
                     {CLOCK_MONITOR_EXE, "--virtual"},
                     "following"},
                    false);
}
#endif
