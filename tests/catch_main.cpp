// SPDX-License-Identifier: BSL-1.0
// The tests' main: Catch2's, plus a crash reporter. A test that crashes in CI (SIGSEGV, SIGBUS,
// SIGILL, SIGFPE, SIGABRT) prints the stack of every thread, taken by gdb attached to the dying
// process, so that a crash seen once on a CI machine can be diagnosed from its log. Catch2 reports
// the failing test first, restores this handler and re-raises; this handler then runs gdb (when
// installed: without it, glibc's backtrace()) and ends the process with the original signal.
// Not installed under ASan or TSan, which print their own reports.
#define CATCH_CONFIG_RUNNER
#include "support/catch.hpp"
#include "support/sanitizers.hpp"

#include <csignal>
#include <cstdio>
#include <cstring>
#include <execinfo.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

#if !defined(TACTUS_TEST_SANITIZED)
// Prepared before any crash: a signal handler may not allocate or format.
char pid_text[32];
char* gdb_argv[] = {const_cast<char*>("timeout"),
                    const_cast<char*>("60"),
                    const_cast<char*>("gdb"),
                    const_cast<char*>("-batch"),
                    const_cast<char*>("-nx"),
                    const_cast<char*>("-p"),
                    pid_text,
                    const_cast<char*>("-ex"),
                    const_cast<char*>("info threads"),
                    const_cast<char*>("-ex"),
                    const_cast<char*>("info sharedlibrary"),  // to place frames of stripped libraries
                    const_cast<char*>("-ex"),
                    const_cast<char*>("thread apply all bt 40"),
                    nullptr};

void say(const char* s) { (void)!::write(STDERR_FILENO, s, std::strlen(s)); }

void on_crash(int sig) {
  say("\n*** tactus test crashed (signal ");
  say(sig == SIGSEGV   ? "SIGSEGV"
      : sig == SIGBUS  ? "SIGBUS"
      : sig == SIGABRT ? "SIGABRT"
      : sig == SIGFPE  ? "SIGFPE"
                       : "SIGILL");
  say("): the stacks of all threads follow ***\n");
  const pid_t child = ::fork();
  if (child == 0) {
    ::dup2(STDERR_FILENO, STDOUT_FILENO);
    ::execvp("timeout", gdb_argv);
    ::_exit(127);
  }
  int status = 0;
  if (child > 0) ::waitpid(child, &status, 0);
  if (child < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    say("*** gdb unavailable or failed: glibc's backtrace of the crashing thread ***\n");
    void* frames[64];
    ::backtrace_symbols_fd(frames, ::backtrace(frames, 64), STDERR_FILENO);
  }
  std::signal(sig, SIG_DFL);
  ::raise(sig);
}
#endif

void install_crash_reporter() {
#if !defined(TACTUS_TEST_SANITIZED)
  std::snprintf(pid_text, sizeof pid_text, "%d", int(::getpid()));
  void* warm[1];
  (void)::backtrace(warm, 1);  // loads libgcc now, not inside the handler
#if defined(PR_SET_PTRACER)
  ::prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);  // Yama: let gdb attach to us
#endif
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) {
    struct sigaction sa {};
    sa.sa_handler = on_crash;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    ::sigaction(sig, &sa, nullptr);
  }
#endif
}

}  // namespace

int main(int argc, char* argv[]) {
  install_crash_reporter();
  return Catch::Session().run(argc, argv);
}
