// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <spawn.h>
#include <sstream>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

// A program the test runs beside itself (the drum machine, jack_midi_clock, jack_mclk_dump):
// started with posix_spawnp, its stdout (and optionally stderr) to a file, reaped on
// destruction so no test leaves a process behind.

extern char** environ;

namespace tactus_tests {

/// A directory of this test process's own (`<tmp>/<prefix>-<pid>`), created on first use, for
/// what its children write.
inline std::filesystem::path scratch_dir(const std::string& prefix) {
  auto d = std::filesystem::temp_directory_path() / (prefix + "-" + std::to_string(::getpid()));
  std::filesystem::create_directories(d);
  return d;
}

/// A whole file as a string ("" when it cannot be read).
inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct child_options {
  std::string stdout_file = "/dev/null";
  bool stderr_too = false;                   // stderr to the same file
  std::string stderr_file{};                 // else, when not empty: stderr to this file
  std::map<std::string, std::string> env{};  // overrides and additions to this process's environment
  std::string cwd{};                         // empty: this process's
  int stop_signal = SIGTERM;                 // what the destructor sends
};

class child_process {
 public:
  explicit child_process(std::vector<std::string> args, child_options o = {}) : stop_signal_(o.stop_signal) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> vars;
    for (char** e = environ; *e; ++e) {
      const std::string v = *e;
      if (!o.env.count(v.substr(0, v.find('=')))) vars.push_back(v);
    }
    for (auto& [k, v] : o.env) vars.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& v : vars) envp.push_back(v.data());
    envp.push_back(nullptr);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, o.stdout_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (o.stderr_too) posix_spawn_file_actions_adddup2(&fa, 1, 2);
    else if (!o.stderr_file.empty())
      posix_spawn_file_actions_addopen(&fa, 2, o.stderr_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (!o.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, o.cwd.c_str());
    const int rc = posix_spawnp(&pid_, argv[0], &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) throw std::runtime_error("cannot start " + args[0] + ": " + std::strerror(rc));
  }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  ~child_process() { stop(stop_signal_); }

  /// The process id (-1 once reaped).
  pid_t pid() const noexcept { return pid_; }

  /// Sends `sig` without waiting.
  void signal(int sig) {
    if (pid_ > 0) ::kill(pid_, sig);
  }

  /// Sends `sig` and reaps the process.
  void stop(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  /// The exit code (128 + signal if killed by one), or nullopt if it did not end in time.
  std::optional<int> wait(std::chrono::steady_clock::duration timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      int status = 0;
      if (pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      if (std::chrono::steady_clock::now() >= end) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

 private:
  pid_t pid_ = -1;
  int stop_signal_;
};

/// A program (an example) as a child process, stdout and stderr in files of their own under
/// scratch_dir(tag), SIGKILLed if the test leaves it running.
class example_process {
 public:
  example_process(std::string tag, std::vector<std::string> args, std::map<std::string, std::string> env = {})
      : out_(dir(tag) / ("out-" + std::to_string(++count_))),
        err_(dir(tag) / ("err-" + std::to_string(count_))),
        process_(std::move(args), {.stdout_file = out_.string(),
                                   .stderr_file = err_.string(),
                                   .env = std::move(env),
                                   .stop_signal = SIGKILL}) {}
  std::optional<int> wait(std::chrono::steady_clock::duration timeout) { return process_.wait(timeout); }
  void signal(int s) { process_.signal(s); }
  pid_t pid() const noexcept { return process_.pid(); }
  std::string out() const { return slurp(out_); }
  std::string err() const { return slurp(err_); }
  bool says(const std::string& text) const {
    return out().find(text) != std::string::npos || err().find(text) != std::string::npos;
  }
  /// Waits until stdout or stderr holds `text`.
  bool wait_for(const std::string& text, std::chrono::steady_clock::duration timeout = std::chrono::seconds(10)) const {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (!says(text) && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return says(text);
  }

 private:
  static std::filesystem::path dir(const std::string& tag) { return scratch_dir(tag); }
  std::filesystem::path out_, err_;
  child_process process_;
  static inline int count_ = 0;
};

}  // namespace tactus_tests
