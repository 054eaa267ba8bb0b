// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/detail/rtmidi_access.hpp>

#include <RtMidi.h>
#include <dlfcn.h>

// Closing an RtMidi JACK client without crashing libjack. tactus's own ports close this way; call
// quiesce() on a raw RtMidiIn or RtMidiOut of your own before destroying it:
//
//   RtMidiOut out(RtMidi::UNIX_JACK, "mine");
//   out.openVirtualPort("out");
//   tactus::midi::quiesce(out);   // last, just before `out` is destroyed
//
// Why: RtMidi (5.0.0, and the versions before) closes a JACK port with jack_port_unregister()
// while its client is still active. libjack's notification thread walks the client's port list
// at the same time whenever the server recomputes latencies (any client connecting or leaving
// triggers it), and the unregister erases from that list under it: a SIGSEGV inside libjack
// (jack2 issue #216; seen here about once in a hundred closes on a loaded machine, in the test
// suite and in CI).
//
// quiesce() makes the close safe: it deactivates the client (synchronously: its process thread
// and its notifications stop) and detaches RtMidi's port pointer, so that RtMidi's destructor
// skips its own unregister (and the one-second wait for a process cycle that would never come)
// and jack_client_close() releases the port with the client. It reaches RtMidi's private JACK
// data (detail/rtmidi_access.hpp) and resolves jack_deactivate at run time from the libjack that
// RtMidi itself loaded. Other backends (ALSA) are left alone. tactus's native JACK backend
// (midi/jack/, api::jack) needs none of this: it never unregisters a port of an active client.

namespace tactus::midi {

/// Prepares `m` for destruction (see above); afterwards `m` sends and receives nothing: destroy
/// it. Thread-safe: no; call it from the thread that owns `m`, never from RtMidi's callback.
/// Realtime-safe: no (it waits for the JACK server to deactivate the client).
inline void quiesce(RtMidi& m) noexcept {
  MidiApi* api = detail::rtmidi_backend_access::backend(m);
  if (!api || api->getCurrentApi() != RtMidi::UNIX_JACK) return;
  auto* jack = static_cast<detail::rtmidi_jack_data_prefix*>(detail::rtmidi_data_access::data(*api));
  if (!jack || !jack->client) return;
  using deactivate_fn = int (*)(void*);
  static const auto deactivate = reinterpret_cast<deactivate_fn>(::dlsym(RTLD_DEFAULT, "jack_deactivate"));
  if (!deactivate) return;  // no libjack in this process: RtMidi's JACK backend cannot be in use
  deactivate(jack->client);
  jack->port = nullptr;
}

}  // namespace tactus::midi
