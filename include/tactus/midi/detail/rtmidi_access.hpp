// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <RtMidi.h>

// Reaching RtMidi's private backend data, for quiesce() (rtmidi_close.hpp) only. RtMidi keeps
// its backend in protected members; these accessors reach them through pointers to members named
// via derived classes (never instantiated). RtMidi's JackMidiData begins with the jack_client_t*
// and the jack_port_t* in every release from 4.x to 6.x.

namespace tactus::midi::detail {

struct rtmidi_backend_access : RtMidiIn {
  static MidiApi* backend(RtMidi& r) noexcept { return r.*(&rtmidi_backend_access::rtapi_); }
};
struct rtmidi_data_access : MidiApi {
  static void* data(MidiApi& a) noexcept { return a.*(&rtmidi_data_access::apiData_); }
};

/// The beginning of RtMidi's JackMidiData.
struct rtmidi_jack_data_prefix {
  void* client;  // jack_client_t*
  void* port;    // jack_port_t*
};

}  // namespace tactus::midi::detail
