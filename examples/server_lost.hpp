// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/io_error.hpp>
#include <tactus/shutdown.hpp>

#include <cstdio>
#include <exception>
#include <system_error>

// What the MIDI examples share about the JACK server going away (io_errc::server_lost): the
// program says it in one line and exits with status 1, and the shutdown does not add a line of
// its own for a cleanup that could not send (no note can sound once the server is gone).
//
//   tactus::shutdown sd{io.get_executor()};
//   sd.on_report(examples::report_unless_server_lost);
//   ...
//   } catch (const std::system_error& e) {
//     if (examples::is_server_lost(e)) return examples::say_server_lost("drum_machine");

namespace examples {

inline bool is_server_lost(const std::system_error& e) noexcept {
  return e.code() == tactus::midi::io_errc::server_lost;
}

inline bool is_server_lost(std::exception_ptr p) noexcept {
  try {
    if (p) std::rethrow_exception(p);
  } catch (const std::system_error& e) {
    return is_server_lost(e);
  } catch (...) {
  }
  return false;
}

/// The one line, on stderr; returns the exit status (1).
inline int say_server_lost(const char* program) {
  std::fprintf(stderr, "%s: the JACK server went away\n", program);
  return 1;
}

/// tactus::shutdown's default report (a problem or a hurry: one line on stderr), except a
/// cleanup that failed because the server went away.
inline void report_unless_server_lost(const tactus::shutdown_report& r) {
  if (r.what == tactus::shutdown_report::kind::cleanup_failed && is_server_lost(r.error)) return;
  if (r.is_problem() || r.what == tactus::shutdown_report::kind::hurried)
    std::fprintf(stderr, "tactus: %s\n", r.to_string().c_str());
}

}  // namespace examples
