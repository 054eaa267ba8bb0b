// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <csignal>
#include <pthread.h>

// Holds SIGINT and SIGTERM back while an example opens its MIDI ports, then lets them through to
// its asio::signal_set:
//
//   asio::signal_set signals(io, SIGINT, SIGTERM);
//   examples::hold_signals held;        // before the first port is opened
//   midi::input in(...);                // libjack's threads start with both blocked
//   held.release();                     // just before io.run(): a pending signal arrives now
//   io.run();
//
// Why: a signal caught while libjack talks to the server interrupts its socket read (EINTR) and
// the port fails to open ("Cannot read socket ... Interrupted system call"), so a Ctrl-C at start
// would end in an error instead of a clean exit. Held back, it is delivered when released, to the
// signal_set, which ends the program as a Ctrl-C at any later time does. The threads libjack
// starts meanwhile inherit the blocked mask, so they never take the signal from the main thread.

namespace examples {

class hold_signals {
 public:
  hold_signals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  }
  hold_signals(const hold_signals&) = delete;
  hold_signals& operator=(const hold_signals&) = delete;
  ~hold_signals() { release(); }

  /// Lets the signals through (a pending one is delivered at once). Idempotent.
  void release() {
    if (held_) pthread_sigmask(SIG_UNBLOCK, &set_, nullptr);
    held_ = false;
  }

 private:
  sigset_t set_;
  bool held_ = true;
};

}  // namespace examples
