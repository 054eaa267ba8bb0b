// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <pthread.h>
#include <signal.h>

// Blocks every signal in the calling thread for a scope, so that the threads a library creates
// inside it (libjack's process and notification threads, RtMidi's ALSA thread) inherit a mask
// that blocks them all: SIGINT and SIGTERM then always reach a thread of the application, where
// its asio::signal_set (tactus::shutdown) hears them, and never interrupt a foreign thread.
//
//   {
//     tactus::detail::signal_blocker blocked;   // the mask of this thread, for the scope
//     client = jack_client_open(...);           // its threads start with every signal blocked
//   }                                           // restored; a signal that came meanwhile is delivered now
//
// Asio's own threads (asio::thread_pool) block signals the same way. Internal: users never include it.

namespace tactus::detail {

class signal_blocker {
 public:
  signal_blocker() noexcept {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &previous_);
  }
  ~signal_blocker() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }
  signal_blocker(const signal_blocker&) = delete;
  signal_blocker& operator=(const signal_blocker&) = delete;

 private:
  sigset_t previous_;
};

}  // namespace tactus::detail
