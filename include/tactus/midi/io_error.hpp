// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <string>
#include <system_error>
#include <type_traits>

// Error codes of the MIDI I/O layer, as std::error_code: what midi::input reports to its error
// handler, and what midi::output's async_note completes with when a send fails. Compare with the
// enumerators (a std::error_code compares equal to an io_errc of its category):
//
//   in.on_error([](std::error_code ec, const std::string& what) {
//     if (ec == tactus::midi::io_errc::queue_overflow) std::fprintf(stderr, "lost: %s\n", what.c_str());
//   });

namespace tactus::midi {

/// What the MIDI I/O layer reports. port_reconnected is news, not a failure.
enum class io_errc {
  queue_overflow = 1,  // the receive queue was full: the newest messages were dropped
  sysex_too_long,      // a sysex longer than input_options::max_sysex_bytes was dropped
  malformed_message,   // the backend delivered bytes that are not one MIDI message: dropped
  port_vanished,       // the port we were connected to disappeared
  port_reconnected,    // ... and is back: we are connected again
  backend_error,       // RtMidi reported an error or a warning
  server_lost,         // the JACK server went away: every pending and later operation fails
  xrun,                // the JACK server reported an xrun (news: counted, nothing of ours lost)
  lost_in_backend,     // the backend lost messages before they reached us (JACK's lost-event count)
  late,                // a scheduled message's time had passed: it went out at once
};

inline const std::error_category& io_category() noexcept {
  struct category final : std::error_category {
    const char* name() const noexcept override { return "tactus.midi.io"; }
    std::string message(int ev) const override {
      switch (static_cast<io_errc>(ev)) {
        case io_errc::queue_overflow: return "MIDI input queue full, newest messages dropped";
        case io_errc::sysex_too_long: return "sysex longer than the configured maximum, dropped";
        case io_errc::malformed_message: return "malformed MIDI message dropped";
        case io_errc::port_vanished: return "MIDI port vanished";
        case io_errc::port_reconnected: return "MIDI port reconnected";
        case io_errc::backend_error: return "MIDI backend error";
        case io_errc::server_lost: return "the JACK server went away";
        case io_errc::xrun: return "JACK xrun";
        case io_errc::lost_in_backend: return "MIDI messages lost inside the backend";
        case io_errc::late: return "scheduled MIDI message sent late";
      }
      return "unknown tactus.midi.io error";
    }
  };
  static const category c;
  return c;
}

inline std::error_code make_error_code(io_errc e) noexcept { return {static_cast<int>(e), io_category()}; }

}  // namespace tactus::midi

template <>
struct std::is_error_code_enum<tactus::midi::io_errc> : std::true_type {};
