// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/message.hpp>
#include <tactus/midi/rtmidi_close.hpp>

#include "child_process.hpp"
#include "rtmidi_capture.hpp"

#include <RtMidi.h>
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

// What the fault-injection tests (tests/fault_*_test.cpp, issue 12) share: an example run as a
// child process with its output in files, its CPU time (to tell a spin from a wait), a raw JACK
// MIDI capture port that hears what it sends, and a private JACK server of the test's own, to
// kill with SIGKILL without touching the `jack` fixture's server.
//
//   tactus_tests::private_jack server("fault-server");     // jackd -n tactus-fault-server-<pid> -d dummy
//   tactus_tests::example prog({DRUM_MACHINE_EXE}, server.env());
//   prog.wait_for("drums:");
//   server.kill();                                       // SIGKILL, as a crash or an OOM kill does

#if !defined(TACTUS_JACK_SERVER_SH)
#error "TACTUS_JACK_SERVER_SH: the path of cmake/jack-server.sh (see tests/CMakeLists.txt)"
#endif

namespace tactus_tests {

using fault_clock = std::chrono::steady_clock;

/// CPU time (user + system) of process `pid` so far, from /proc; nullopt once it is gone.
inline std::optional<std::chrono::duration<double>> cpu_time(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return std::nullopt;
  const auto close = stat.rfind(')');  // the command name may hold spaces
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {  // fields 14 and 15: utime, stime
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return std::chrono::duration<double>(double(utime + stime) / double(::sysconf(_SC_CLK_TCK)));
}

/// An example as a child process (see example_process), its files under scratch_dir("fault_test").
class example : public tactus_tests::example_process {
 public:
  example(std::vector<std::string> args, std::map<std::string, std::string> env = {})
      : example_process("fault_test", std::move(args), std::move(env)) {}
};

/// The lines of `s` that hold `text`.
inline std::size_t lines_with(const std::string& s, const std::string& text) {
  std::size_t n = 0;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) n += line.find(text) != std::string::npos;
  return n;
}

using capture = rtmidi_capture;  // see rtmidi_capture.hpp

/// The notes of `got` still sounding at its end: note-ons not followed by their note-off or by
/// All Notes Off (CC 123) on their channel.
inline std::size_t notes_left_sounding(const std::vector<tactus::midi::message>& got) {
  std::map<std::pair<int, int>, int> sounding;
  for (const auto& m : got) {
    if (m.is_note_on()) ++sounding[{m.channel(), m.key()}];
    if (m.is_note_off()) sounding[{m.channel(), m.key()}] = 0;
    if (m.type() == tactus::midi::message_type::control_change && m.data1() == 123)
      for (auto& [k, n] : sounding)
        if (k.first == m.channel()) n = 0;
  }
  return std::size_t(std::count_if(sounding.begin(), sounding.end(), [](auto& kv) { return kv.second != 0; }));
}

/// A JACK server (dummy backend) of this test's own, under a unique name, through
/// cmake/jack-server.sh; stopped (or found dead) at destruction.
class private_jack {
 public:
  explicit private_jack(const std::string& tag)
      : name_("tactus-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(++count_)),
        dir_(scratch_dir("fault_jack") / name_) {
    std::filesystem::create_directories(dir_);
    up_ = script("start") == 0;
  }
  ~private_jack() {
    stop();
    // A jackd killed with SIGKILL leaves its entry in JACK's shared server registry (8 entries
    // for the whole machine, reclaimed only by a server of the same name): after a few kills no
    // server could start any more, the fixture's and other users' included ("Too many servers
    // already active"). A server of the same name, started and stopped gracefully, frees it.
    if (killed_ && script("start") == 0) stop();
  }
  private_jack(const private_jack&) = delete;
  private_jack& operator=(const private_jack&) = delete;

  bool up() const noexcept { return up_; }
  const std::string& name() const noexcept { return name_; }
  /// jackd's output (why it did not start, what it said when killed).
  std::string log() const { return (dir_ / "jackd.log").string(); }
  /// The environment a client of this server runs with.
  std::map<std::string, std::string> env() const {
    return {{"JACK_DEFAULT_SERVER", name_}, {"JACK_NO_START_SERVER", "1"}, {"JACK_NO_AUDIO_RESERVATION", "1"}};
  }
  /// Points this process's own JACK clients at this server.
  void use_here() const {
    for (auto& [k, v] : env()) ::setenv(k.c_str(), v.c_str(), 1);
  }

  /// SIGKILL to jackd (the child of jack-server.sh's `timeout` wrapper): no goodbye to its
  /// clients, as when it crashes. Returns false if it could not be found.
  bool kill() {
    const auto [wrapper, jackd] = pids();
    killed_ = jackd > 0 && ::kill(jackd, SIGKILL) == 0;
    return killed_;
  }

 private:
  // The `timeout` wrapper jack-server.sh started (its pid file) and jackd, its child.
  std::pair<pid_t, pid_t> pids() const {
    std::ifstream pidfile(dir_ / "jackd.pid");
    pid_t wrapper = 0, jackd = 0;
    if (!(pidfile >> wrapper)) return {0, 0};
    std::ifstream children("/proc/" + std::to_string(wrapper) + "/task/" + std::to_string(wrapper) + "/children");
    if (!(children >> jackd)) jackd = 0;
    return {wrapper, jackd};
  }

  // TERM to jackd itself (it exits in a tenth of a second), then the wrapper's end; the script's
  // stop (a scan of every process for leftovers, seconds) only when that did not do it.
  void stop() {
    const auto [wrapper, jackd] = pids();
    if (jackd > 0) ::kill(jackd, SIGTERM);
    const auto end = fault_clock::now() + std::chrono::seconds(3);
    while (wrapper > 0 && ::kill(wrapper, 0) == 0 && fault_clock::now() < end)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (wrapper > 0 && ::kill(wrapper, 0) == 0) script("stop");
    std::filesystem::remove(dir_ / "jackd.pid");
  }

  int script(const char* action) const {
    const auto cmd = std::string("sh ") + TACTUS_JACK_SERVER_SH + " " + action + " " + name_ + " " + dir_.string() +
                     (std::getenv("TACTUS_JACK_NO_REALTIME") ? " --no-realtime" : "") + " >/dev/null 2>&1";
    return std::system(cmd.c_str());
  }

  std::string name_;
  std::filesystem::path dir_;
  bool up_ = false;
  bool killed_ = false;
  static inline int count_ = 0;
};

}  // namespace tactus_tests
