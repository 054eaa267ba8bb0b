// SPDX-License-Identifier: BSL-1.0
// The examples as a user runs them: each built binary is a child process. A bad command line gets
// one line on stderr and exit status 2 before anything is opened; --help the usage on stdout and
// 0; with no JACK server one clear line (no libjack noise) and a non-zero status; SIGINT and
// SIGTERM, just after start and while running, end every example within a second, with status 0
// once its handler is in place, every note ended (the drum machine) and STOP sent (clock_master),
// as a JACK MIDI port of this test on the `jack` fixture's server hears it.
#include <tactus/midi/message.hpp>
#include <tactus/midi/rtmidi_close.hpp>

#include "support/catch.hpp"
#include "support/child_process.hpp"
#include "support/rtmidi_capture.hpp"

#include <RtMidi.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#if !defined(HELLO_METRONOME_EXE) || !defined(MIDI_MONITOR_EXE) || !defined(CLOCK_MONITOR_EXE) || \
    !defined(CLOCK_MASTER_EXE) || !defined(DRUM_MACHINE_EXE)
#error "the examples' paths (see tests/CMakeLists.txt)"
#endif

using tactus::midi::message;
using tactus::midi::message_type;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
namespace fs = std::filesystem;
using Catch::Matchers::ContainsSubstring;

namespace {

// No server of this name runs: whatever opens a MIDI port fails.
const std::map<std::string, std::string> no_server = {{"JACK_DEFAULT_SERVER", "tactus-no-such-server-xyz"},
                                                      {"JACK_NO_START_SERVER", "1"}};

using tactus_tests::slurp;

std::string show(const std::vector<std::string>& args) {
  std::string s;
  for (auto& a : args) s += (s.empty() ? "" : " ") + a;
  return s;
}

// An example as a child process (see tactus_tests::example_process).
class example : public tactus_tests::example_process {
 public:
  example(std::vector<std::string> args, std::map<std::string, std::string> env = {})
      : example_process("examples_test", std::move(args), std::move(env)) {}
};

std::size_t lines(const std::string& s) { return std::size_t(std::count(s.begin(), s.end(), '\n')); }

// Exactly one line on stderr, nothing on stdout, status 2.
void check_usage_error(std::vector<std::string> args, const std::string& expect_in_line = {}) {
  INFO(show(args));
  example e(args, no_server);  // had it opened a port first, it would fail with the backend error instead
  const auto status = e.wait(10s);
  const auto err = e.err();
  INFO("stderr: " << err << "stdout: " << e.out());
  CHECK(status == 2);
  CHECK(lines(err) == 1);
  CHECK(err.back() == '\n');
  CHECK(e.out().empty());
  if (!expect_in_line.empty()) CHECK_THAT(err, ContainsSubstring(expect_in_line));
}

void check_help(const std::string& exe) {
  INFO(exe << " --help");
  example e({exe, "--help"}, no_server);
  CHECK(e.wait(10s) == 0);
  CHECK_THAT(e.out(), ContainsSubstring("Usage:") && ContainsSubstring("--help"));
  CHECK(e.err().empty());
}

using capture = tactus_tests::rtmidi_capture;  // a raw JACK MIDI input port "<client>:in"

bool is_note_on(const message& m) { return m.is_note_on(); }
bool is_clock(const message& m) { return m.type() == message_type::clock; }

// Every note-on heard was ended: by its note-off, or by All Notes Off (CC 123) on its channel.
void check_every_note_ended(const std::vector<message>& got) {
  std::map<std::pair<int, int>, int> sounding;
  for (auto& m : got) {
    if (m.is_note_on()) ++sounding[{m.channel(), m.key()}];
    if (m.is_note_off()) sounding[{m.channel(), m.key()}] = 0;
    if (m.type() == message_type::control_change && m.data1() == 123)
      for (auto& [k, n] : sounding)
        if (k.first == m.channel()) n = 0;
  }
  std::erase_if(sounding, [](auto& kv) { return kv.second == 0; });
  CHECK(sounding.empty());
}

// Every START heard was followed by a STOP, the last transport message.
void check_stopped(const std::vector<message>& got) {
  auto is_transport = [](const message& m) {
    return m.type() == message_type::start || m.type() == message_type::stop || m.type() == message_type::continue_;
  };
  const auto last = std::find_if(got.rbegin(), got.rend(), is_transport);
  if (std::none_of(got.begin(), got.end(), [](auto& m) { return m.type() == message_type::start; })) return;
  REQUIRE(last != got.rend());
  CHECK(last->type() == message_type::stop);
}

// When the signal is sent, relative to the program's start.
enum class moment { at_once, while_starting, while_running };
const char* to_string(moment m) {
  switch (m) {
    case moment::at_once: return "at once";
    case moment::while_starting: return "30 ms after start";
    default: return "while running";
  }
}

// Sends `sig` at moment `when` (`running_marker`: what the example prints once it runs, `running`:
// any further condition), then checks it ends within a second: status 0, or, when the signal may
// have come before the program installed its handler (at once), killed by that signal as its
// default action does.
void check_ends_on_signal(
    example& e, int sig, moment when, const std::string& running_marker,
    const std::function<bool()>& running = [] { return true; }) {
  INFO((sig == SIGINT ? "SIGINT " : "SIGTERM ") << to_string(when));
  if (when == moment::while_starting) std::this_thread::sleep_for(30ms);
  if (when == moment::while_running) {
    REQUIRE(e.wait_for(running_marker));
    const auto end = clock_type::now() + 10s;
    while (!running() && clock_type::now() < end) std::this_thread::sleep_for(5ms);
    REQUIRE(running());
    std::this_thread::sleep_for(37ms);
  }
  e.signal(sig);
  const auto sent = clock_type::now();
  auto status = e.wait(1s);
  const auto took = std::chrono::duration<double>(clock_type::now() - sent).count();
  INFO("stdout: " << e.out() << "stderr: " << e.err() << "took " << took << " s");
  if (!status) status = e.wait(5s);  // reaped either way; the check below fails
  REQUIRE(status.has_value());
  CHECK(took < 1.0);
  if (when == moment::while_running) CHECK(*status == 0);
  else CHECK((*status == 0 || *status == 128 + sig));
}

constexpr moment moments[] = {moment::at_once, moment::while_starting, moment::while_running};
constexpr int signals[] = {SIGINT, SIGTERM};

}  // namespace

TEST_CASE("examples: a bad option gets one line on stderr and status 2, before anything is opened") {
  const std::string hm = HELLO_METRONOME_EXE, mm = MIDI_MONITOR_EXE, cm = CLOCK_MONITOR_EXE, cmaster = CLOCK_MASTER_EXE;
  for (auto bpm : {"600x", "120x", "abc", "nan", "-1", "1e300", "inf", "0"}) {
    check_usage_error({hm, "--bpm", bpm}, "--bpm");
    check_usage_error({cmaster, "--bpm", bpm}, "--bpm");
  }
  for (auto beats : {"2x", "abc", "-1", "1e300", "2.5"}) check_usage_error({hm, "--beats", beats}, "--beats");
  check_usage_error({hm, "--meter", "0"}, "--meter");
  for (auto seconds : {"abc", "nan", "-1", "1e300", "5s"}) {
    check_usage_error({cmaster, "--seconds", seconds}, "--seconds");
    check_usage_error({cm, "--virtual", "--seconds", seconds}, "--seconds");
  }
  check_usage_error({cm, "--virtual", "--latency-us", "12x"}, "--latency-us");
  check_usage_error({cm}, "--port NAME or --virtual");
  check_usage_error({cm, "--port", "a", "--virtual"});
  check_usage_error({mm, "--port", "a", "--virtual"});
  check_usage_error({mm, "--port"});
  for (auto& exe : {hm, mm, cm, cmaster}) {
    check_usage_error({exe, "--no-such-option"}, "--no-such-option");
    check_usage_error({exe, "stray"});
  }
}

TEST_CASE("examples: --help prints the usage on stdout, status 0") {
  for (auto exe : {HELLO_METRONOME_EXE, MIDI_MONITOR_EXE, CLOCK_MONITOR_EXE, CLOCK_MASTER_EXE}) check_help(exe);
}

TEST_CASE("examples: with no JACK server, one clear line and a non-zero status, no libjack noise") {
  const std::vector<std::vector<std::string>> runs = {{MIDI_MONITOR_EXE},
                                                      {MIDI_MONITOR_EXE, "--virtual"},
                                                      {MIDI_MONITOR_EXE, "--port", "x"},
                                                      {CLOCK_MONITOR_EXE, "--virtual"},
                                                      {CLOCK_MONITOR_EXE, "--port", "x", "--json"},
                                                      {CLOCK_MASTER_EXE},
                                                      {CLOCK_MASTER_EXE, "--port", "x"}};
  for (auto& args : runs) {
    INFO(show(args));
    example e(args, no_server);
    const auto status = e.wait(10s);
    const auto err = e.err();
    INFO("stderr: " << err << "stdout: " << e.out());
    REQUIRE(status.has_value());
    CHECK(*status != 0);
    CHECK(*status < 128);  // an exit, not a crash
    CHECK(lines(err) == 1);
    CHECK_THAT(err, ContainsSubstring("no MIDI backend") && ContainsSubstring("tactus-no-such-server-xyz"));
    CHECK_THAT(err, !ContainsSubstring("Cannot connect to server request channel") && !ContainsSubstring("JackShm") &&
                        !ContainsSubstring("MidiInJack"));
    CHECK(e.out().empty());
  }
}

TEST_CASE("examples: midi_monitor names its virtual port once") {
  example e({MIDI_MONITOR_EXE, "--virtual"});
  REQUIRE(e.wait_for("listening on"));
  CHECK_THAT(e.out(), ContainsSubstring("listening on virtual port tactus-monitor:in ("));
  e.signal(SIGINT);
  CHECK(e.wait(1s) == 0);
}

TEST_CASE("examples: hello_metronome ends on SIGINT and SIGTERM") {
  for (int sig : signals)
    for (moment when : moments) {
      example e({HELLO_METRONOME_EXE, "--bpm", "600", "--beats", "0"});
      check_ends_on_signal(e, sig, when, "bpm  late");
    }
}

TEST_CASE("examples: midi_monitor ends on SIGINT and SIGTERM") {
  for (int sig : signals)
    for (moment when : moments) {
      example e({MIDI_MONITOR_EXE, "--virtual"});
      check_ends_on_signal(e, sig, when, "listening on");
    }
}

TEST_CASE("examples: clock_monitor ends on SIGINT and SIGTERM, with --port and --virtual") {
  // A clock source of this test: pulses at 120 BPM from a thread, START first.
  struct source : RtMidiOut {
    source() : RtMidiOut(RtMidi::UNIX_JACK, "cmsrc") { openVirtualPort("out"); }
    ~source() { tactus::midi::quiesce(*this); }  // RtMidi's own close can crash libjack
  } src;
  std::atomic<bool> done{false};
  std::thread pulses([&] {
    unsigned char start = 0xFA, pulse = 0xF8;
    src.sendMessage(&start, 1);
    for (auto t = clock_type::now(); !done; t += 20833us) {
      std::this_thread::sleep_until(t);
      src.sendMessage(&pulse, 1);
    }
  });
  struct joiner {
    std::atomic<bool>& done;
    std::thread& t;
    ~joiner() { done = true, t.join(); }
  } join{done, pulses};

  for (bool by_name : {true, false})
    for (int sig : signals)
      for (moment when : moments) {
        INFO((by_name ? "--port cmsrc" : "--virtual"));
        example e(by_name ? std::vector<std::string>{CLOCK_MONITOR_EXE, "--port", "cmsrc", "--json"}
                          : std::vector<std::string>{CLOCK_MONITOR_EXE, "--virtual", "--json"});
        check_ends_on_signal(e, sig, when, "following");
      }
}

TEST_CASE("examples: clock_master ends on SIGINT and SIGTERM, STOP sent") {
  for (int sig : signals)
    for (moment when : moments) {
      capture cap("cmcap");
      example e({CLOCK_MASTER_EXE, "--port", "cmcap", "--bpm", "300"});
      check_ends_on_signal(e, sig, when, "clock at", [&] { return cap.count(is_clock) >= 24; });
      std::this_thread::sleep_for(50ms);
      const auto got = cap.messages();
      if (when == moment::while_running) {
        CHECK(std::count_if(got.begin(), got.end(), [](auto& m) { return m.type() == message_type::stop; }) == 1);
        CHECK((!got.empty() && got.back().type() == message_type::stop));
      }
      check_stopped(got);
    }
}

TEST_CASE("examples: drum_machine ends on SIGINT and SIGTERM, every note ended") {
  for (int sig : signals)
    for (moment when : moments) {
      capture cap("dmsig");
      example e({DRUM_MACHINE_EXE, "--drums-port", "dmsig:in", "--bass-port", "dmsig:in", "--bpm", "150", "--pattern",
                 "electro"});
      check_ends_on_signal(e, sig, when, "", [&] { return cap.count(is_note_on) >= 8; });
      std::this_thread::sleep_for(50ms);
      check_every_note_ended(cap.messages());
    }
}
