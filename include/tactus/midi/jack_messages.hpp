// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <dlfcn.h>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

// libjack's own messages. libjack prints its errors and notices straight to stderr (about eleven
// lines when no JACK server runs: "Cannot connect to server socket ...", "JackShmReadWritePtr
// ..."), interleaved with the program's output. This routes them, through libjack's own
// jack_set_error_function / jack_set_info_function:
//
//   tactus::midi::set_jack_message_handler(nullptr);       // discard them (what the examples do)
//   tactus::midi::set_jack_message_handler([](tactus::midi::jack_message_level, const char* line) {
//     my_log(line);                                        // any thread: see jack_message_handler
//   });
//
// Nothing to call for tactus's own messages: when tactus asks whether a JACK server answers
// (ports.hpp, before it creates an RtMidi client), it holds a jack_message_capture, so that the
// lines libjack gives for a failed attempt go into backend_unavailable's what() ("libjack: Cannot
// connect to server socket err = No such file or directory"), not to the handler or to stderr.
// Without a handler set, every other line goes where it went before tactus was loaded.
//
// The functions are resolved at run time (dlsym(RTLD_DEFAULT, ...)), from the libjack that
// tactus::midi links (its native JACK backend, midi/jack/) and RtMidi loads: this header itself
// needs no JACK headers. Without libjack in the process there is nothing to route and the calls
// say so (they return false).
//
// Global state, by necessity: libjack keeps one error function and one info function per process,
// with no user data, so the handler is a process-wide setting here too.

namespace tactus::midi {

/// Which of libjack's two channels a line came from.
enum class jack_message_level { error, info };

/// Receives one line of libjack's, without its newline. Called on whatever thread libjack reports
/// from (the thread calling into libjack, or libjack's own notification thread), so it must be
/// thread-safe; it should not block. A plain function: libjack's callbacks carry no user data.
using jack_message_handler = void (*)(jack_message_level level, const char* line);

/// A handler that prints each line to stderr, as libjack does by default.
inline void print_jack_message(jack_message_level, const char* line) noexcept {
  std::fprintf(stderr, "%s\n", line);
  std::fflush(stderr);
}

namespace detail {

using jack_callback = void (*)(const char*);

struct jack_message_routing {
  // libjack's callbacks before ours (its defaults, usually). Atomic: a libjack thread started
  // before ours were installed reads them through our trampoline, ordered only by libjack's own
  // (plain) callback pointer.
  std::atomic<jack_callback> previous_error{nullptr};
  std::atomic<jack_callback> previous_info{nullptr};
  // Set by set_jack_message_handler; until then, lines go to the previous callbacks.
  std::atomic<bool> user_set{false};
  std::atomic<jack_message_handler> handler{nullptr};
};

inline jack_message_routing& jack_routing() {
  static jack_message_routing r;
  return r;
}

/// The lines libjack reports on this thread while a jack_message_capture is alive on it.
inline thread_local std::vector<std::string>* jack_capture_lines = nullptr;

inline void jack_route(jack_message_level level, const char* line) noexcept {
  if (!line) return;
  if (auto* captured = jack_capture_lines) {
    try {
      captured->emplace_back(line);
    } catch (...) {  // out of memory: the line is lost, never libjack's thread
    }
    return;
  }
  auto& r = jack_routing();
  // acquire: pairs with the release store in set_jack_message_handler (handler before flag).
  if (r.user_set.load(std::memory_order_acquire)) {
    // relaxed: a plain function pointer, published by the flag above.
    if (auto h = r.handler.load(std::memory_order_relaxed)) h(level, line);
    return;
  }
  // acquire: pairs with install_jack_routing's release stores.
  const auto previous =
      (level == jack_message_level::error ? r.previous_error : r.previous_info).load(std::memory_order_acquire);
  if (previous) previous(line);
  else print_jack_message(level, line);
}

inline void jack_error_trampoline(const char* line) { jack_route(jack_message_level::error, line); }
inline void jack_info_trampoline(const char* line) { jack_route(jack_message_level::info, line); }

/// Makes our trampolines libjack's callbacks, once per process. False when no libjack is loaded.
inline bool install_jack_routing() {
  static const bool ok = [] {
    using set_fn = void (*)(jack_callback);
    const auto set_error = reinterpret_cast<set_fn>(::dlsym(RTLD_DEFAULT, "jack_set_error_function"));
    const auto set_info = reinterpret_cast<set_fn>(::dlsym(RTLD_DEFAULT, "jack_set_info_function"));
    if (!set_error || !set_info) return false;
    auto& r = jack_routing();
    // libjack exports its current callbacks (jack/jack.h: jack_error_callback, jack_info_callback):
    // ours forward to them until a handler is set, so a program that set its own keeps it.
    // release: published before our trampolines can run (see jack_route).
    if (auto* cur = reinterpret_cast<jack_callback*>(::dlsym(RTLD_DEFAULT, "jack_error_callback")))
      r.previous_error.store(*cur, std::memory_order_release);
    if (auto* cur = reinterpret_cast<jack_callback*>(::dlsym(RTLD_DEFAULT, "jack_info_callback")))
      r.previous_info.store(*cur, std::memory_order_release);
    set_error(&jack_error_trampoline);
    set_info(&jack_info_trampoline);
    return true;
  }();
  return ok;
}

}  // namespace detail

/// Sends every line libjack reports from now on to `handler`; nullptr discards them. Returns
/// false (and changes nothing) when no libjack is loaded in this process, i.e. RtMidi was built
/// without JACK. Lines captured by a jack_message_capture do not reach the handler.
/// Thread-safe: yes (libjack may be reporting meanwhile; a line goes to the old or the new
/// handler). Realtime-safe: no (the first call resolves libjack's functions).
inline bool set_jack_message_handler(jack_message_handler handler) {
  if (!detail::install_jack_routing()) return false;
  auto& r = detail::jack_routing();
  r.handler.store(handler, std::memory_order_relaxed);
  r.user_set.store(true, std::memory_order_release);  // publishes the handler to jack_route
  return true;
}

/// While alive, collects the lines libjack reports on the constructing thread (e.g. during a
/// jack_client_open that fails) instead of passing them on; lines from other threads go their
/// usual way. Use it around one call into libjack, then quote lines() in your own message.
/// Thread-safe: a capture belongs to its thread; construct and destroy it there, not nested in
/// a coroutine that may move threads. Realtime-safe: no.
class jack_message_capture {
 public:
  jack_message_capture() : previous_(std::exchange(detail::jack_capture_lines, &lines_)) {
    detail::install_jack_routing();
  }
  jack_message_capture(const jack_message_capture&) = delete;
  jack_message_capture& operator=(const jack_message_capture&) = delete;
  ~jack_message_capture() { detail::jack_capture_lines = previous_; }

  /// The lines so far, in order, without newlines.
  const std::vector<std::string>& lines() const noexcept { return lines_; }

 private:
  std::vector<std::string> lines_;
  std::vector<std::string>* previous_;
};

namespace detail {

/// Whether a JACK server answers: opens and closes a bare JACK client (no ports, never
/// activated, so its close is safe; see rtmidi_close.hpp), never starting a server, as RtMidi's
/// JACK backend does. nullopt when it answers (or when there is no libjack to ask); otherwise
/// why not, in one line quoting libjack's first message. Thread-safe: yes. Realtime-safe: no.
inline std::optional<std::string> jack_server_problem(const std::string& client_name) {
  using open_fn = void* (*)(const char*, int, int*, ...);
  using close_fn = int (*)(void*);
  static const auto open = reinterpret_cast<open_fn>(::dlsym(RTLD_DEFAULT, "jack_client_open"));
  static const auto close = reinterpret_cast<close_fn>(::dlsym(RTLD_DEFAULT, "jack_client_close"));
  if (!open || !close) return std::nullopt;
  constexpr int jack_no_start_server = 0x01;  // JackNoStartServer, jack/types.h
  jack_message_capture capture;
  int status = 0;
  void* client = open(client_name.c_str(), jack_no_start_server, &status);
  if (client) {
    close(client);
    return std::nullopt;
  }
  const char* server = std::getenv("JACK_DEFAULT_SERVER");  // libjack's own choice of server
  std::string why = std::string("no JACK server \"") + (server && *server ? server : "default") + "\" answers";
  if (!capture.lines().empty()) why += " (libjack: " + capture.lines().front() + ")";
  return why;
}

}  // namespace detail

}  // namespace tactus::midi
