// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <RtMidi.h>
#include <dlfcn.h>
#include <memory>

// Closing an RtMidi JACK client without crashing libjack.
//
// RtMidi (5.0.0, and the versions before) closes a JACK port with jack_port_unregister() while its
// client is still active. libjack's notification thread walks the client's port list at the same
// time whenever the server recomputes latencies (any client connecting or leaving triggers it),
// and the unregister erases from that list under it: a SIGSEGV inside libjack (jack2 issue #216;
// seen here about once in a hundred closes on a loaded machine, in the test suite and in CI).
//
// quiesce() makes the close safe: it deactivates the client (synchronously: its process thread
// and its notifications stop) and detaches RtMidi's port pointer, so that RtMidi's destructor
// skips its own unregister (and the one-second wait for a process cycle that would never come)
// and jack_client_close() releases the port with the client. It reaches RtMidi's private JACK
// data, whose first two members are the jack_client_t* and the jack_port_t* in every RtMidi
// release (4.x to 6.x), and resolves jack_deactivate at run time from the libjack that RtMidi
// itself loaded, so tactus needs no JACK headers or link flags of its own. Other backends (ALSA)
// are left alone.

namespace tactus::midi::detail {

// RtMidi keeps its backend in protected members: these accessors reach them through
// pointers to members named via derived classes (never instantiated).
struct rtmidi_backend_access : RtMidiIn {
  static MidiApi* backend(RtMidi& r) noexcept { return r.*(&rtmidi_backend_access::rtapi_); }
};
struct rtmidi_data_access : MidiApi {
  static void* data(MidiApi& a) noexcept { return a.*(&rtmidi_data_access::apiData_); }
};

// The beginning of RtMidi's JackMidiData.
struct rtmidi_jack_data_prefix {
  void* client;  // jack_client_t*
  void* port;    // jack_port_t*
};

/// Prepares `m` for destruction (see above). Call it from the thread that owns `m`, not from
/// RtMidi's callback. Afterwards `m` sends and receives nothing; destroy it.
inline void quiesce(RtMidi& m) noexcept {
  MidiApi* api = rtmidi_backend_access::backend(m);
  if (!api || api->getCurrentApi() != RtMidi::UNIX_JACK) return;
  auto* jack = static_cast<rtmidi_jack_data_prefix*>(rtmidi_data_access::data(*api));
  if (!jack || !jack->client) return;
  using deactivate_fn = int (*)(void*);
  static const auto deactivate = reinterpret_cast<deactivate_fn>(::dlsym(RTLD_DEFAULT, "jack_deactivate"));
  if (!deactivate) return;  // no libjack in this process: RtMidi's JACK backend cannot be in use
  deactivate(jack->client);
  jack->port = nullptr;
}

/// Deletes an RtMidiIn or RtMidiOut after quiesce().
struct rtmidi_deleter {
  template <class RtMidiT>
  void operator()(RtMidiT* m) const noexcept {
    quiesce(*m);
    delete m;
  }
};

}  // namespace tactus::midi::detail
