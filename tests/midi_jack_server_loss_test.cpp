// SPDX-License-Identifier: BSL-1.0
// The JACK server going away under the native backend (issue 12, item 1): a private jackd of the
// test's own (never the fixture's) is killed with SIGKILL while an input waits to receive and an
// output has a scheduled message and a sounding note. Everything must fail with
// io_errc::server_lost, at once or within a second, and nothing may hang or spin.
#include <tactus/midi/input.hpp>
#include <tactus/midi/output.hpp>

#include "support/catch.hpp"
#include "support/child_process.hpp"
#include "support/jack_link.hpp"
#include "support/jack_period.hpp"
#include <asio/io_context.hpp>
#include <jack/jack.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace tactus::midi;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

double cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

double ms(clock_type::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Points JACK_DEFAULT_SERVER at `name` for the scope.
struct server_env {
  explicit server_env(const std::string& name) {
    if (const char* v = std::getenv("JACK_DEFAULT_SERVER")) saved = v;
    ::setenv("JACK_DEFAULT_SERVER", name.c_str(), 1);
  }
  ~server_env() {
    if (saved) ::setenv("JACK_DEFAULT_SERVER", saved->c_str(), 1);
    else ::unsetenv("JACK_DEFAULT_SERVER");
  }
  std::optional<std::string> saved;
};

bool server_answers() {
  jack_status_t status{};
  jack_message_capture quiet;
  jack_client_t* c = jack_client_open("loss-probe", JackNoStartServer, &status);
  if (!c) return false;
  jack_client_close(c);
  return true;
}

}  // namespace

TEST_CASE("the JACK server killed: every operation fails with server_lost, nothing hangs or spins") {
  // One name per build tree (the fixture's, plus "-loss"), not per run: jackd keeps a slot of its
  // shared registry (8 in all) for each server name until a server of that name exits cleanly,
  // and one killed with SIGKILL never does; the next run of this test reuses the slot.
  const char* fixture = std::getenv("JACK_DEFAULT_SERVER");
  const std::string name = std::string(fixture && *fixture ? fixture : "tactus") + "-loss";
  tactus_tests::child_options co;
  co.env = {{"JACK_NO_AUDIO_RESERVATION", "1"}};
  // Its output to a file: a test that dies must not leave jackd holding ctest's pipes.
  co.stdout_file = (tactus_tests::scratch_dir("midi-jack-loss") / "jackd.log").string();
  co.stderr_too = true;
  co.stop_signal = SIGKILL;
  tactus_tests::child_process jackd({"jackd", "-n", name, "--no-realtime", "-t", "2000", "-d", "dummy", "-r", "48000",
                                     "-p", std::to_string(tactus_tests::jack_period_frames())},
                                    co);
  server_env env(name);
  const auto up_by = clock_type::now() + 10s;
  while (!server_answers() && clock_type::now() < up_by) std::this_thread::sleep_for(50ms);
  REQUIRE(server_answers());

  asio::io_context io;
  output_options oo;
  oo.client_name = "loss-out";
  output out(io.get_executor(), virtual_port, oo);
  input_options io_opts;
  io_opts.client_name = "loss-in";
  input in(io.get_executor(), out.port_name(), io_opts);
  REQUIRE(in.backend() == api::jack);
  tactus_tests::link(out, in);

  out.note_on(0, 60, 100);
  std::optional<timed_message> first;
  in.async_receive([&](std::error_code ec, timed_message m) {
    if (!ec) first = m;
  });
  io.run_for(5s);
  REQUIRE(first);
  CHECK(first->msg == message::note_on(0, 60, 100));
  CHECK(out.open_notes() == 1);

  std::vector<std::error_code> errors;
  in.on_error([&](std::error_code ec, const std::string&) { errors.push_back(ec); });
  std::optional<std::error_code> receive_ec, scheduled_ec;
  clock_type::time_point receive_at{};
  in.async_receive([&](std::error_code ec, timed_message) {
    receive_ec = ec;
    receive_at = clock_type::now();
  });
  out.async_send_at(message::note_on(0, 62, 100), clock_type::now() + 400ms,
                    [&](std::error_code ec) { scheduled_ec = ec; });
  out.send_at(message::note_off(0, 60), clock_type::now() + 10s);  // in the process thread's schedule

  io.restart();
  io.poll();
  const auto killed_at = clock_type::now();
  jackd.stop(SIGKILL);  // kill -9 and reap

  // The pending receive completes with server_lost within a second.
  io.restart();
  while (!receive_ec && clock_type::now() < killed_at + 3s) io.run_one_for(50ms);
  REQUIRE(receive_ec);
  CHECK(*receive_ec == io_errc::server_lost);
  INFO("receive completed " << ms(receive_at - killed_at) << " ms after the kill");
  CHECK(receive_at - killed_at < 1s);
  std::printf("figure: server killed: the pending receive completed with server_lost %.1f ms later\n",
              ms(receive_at - killed_at));
  CHECK(in.server_lost());
  CHECK(std::count(errors.begin(), errors.end(), make_error_code(io_errc::server_lost)) == 1);

  // The output knows too (its own client's shutdown notice), and sends fail at once.
  while (!out.server_lost() && clock_type::now() < killed_at + 3s) std::this_thread::sleep_for(1ms);
  REQUIRE(out.server_lost());
  const auto t0 = clock_type::now();
  try {
    out.note_on(0, 64, 100);
    FAIL("send after the server died did not throw");
  } catch (const std::system_error& e) {
    CHECK(e.code() == io_errc::server_lost);
  }
  CHECK_THROWS_AS(out.send_at(message::clock(), clock_type::now() + 1ms), std::system_error);
  CHECK(clock_type::now() - t0 < 100ms);
  CHECK(out.open_notes() == 0);  // nothing sounds any more

  // Nothing spins: over a second, the process uses a small part of one core.
  const double cpu0 = cpu_seconds();
  const auto window = clock_type::now() + 1s;
  io.restart();
  io.run_until(window);  // returns when nothing is left to do
  std::this_thread::sleep_until(window);
  const double cpu = cpu_seconds() - cpu0;
  std::printf("figure: server killed: %.3f s of CPU over the next second\n", cpu);
  CHECK(cpu < 0.3);
  REQUIRE(scheduled_ec);
  CHECK(*scheduled_ec == io_errc::server_lost);

  // A later receive fails too; closing returns at once.
  std::optional<std::error_code> later;
  in.async_receive([&](std::error_code ec, timed_message) { later = ec; });
  io.restart();
  io.run_for(100ms);
  REQUIRE(later);
  CHECK(*later == io_errc::server_lost);
  const auto c0 = clock_type::now();
  out.close();
  in.close();
  INFO("close took " << ms(clock_type::now() - c0) << " ms");
  CHECK(clock_type::now() - c0 < 500ms);

  // Give the registry slot back: a server of the same name, started and stopped gracefully,
  // frees what the killed one kept (otherwise every fresh clone, a new build tree and so a new
  // name, would keep one more of JACK's 8 slots until no server could start on the machine).
  co.stop_signal = SIGTERM;
  tactus_tests::child_process again({"jackd", "-n", name, "--no-realtime", "-t", "2000", "-d", "dummy", "-r", "48000",
                                     "-p", std::to_string(tactus_tests::jack_period_frames())},
                                    co);
  const auto again_by = clock_type::now() + 10s;
  while (!server_answers() && clock_type::now() < again_by) std::this_thread::sleep_for(50ms);
  CHECK(server_answers());
  again.stop(SIGTERM);
}
