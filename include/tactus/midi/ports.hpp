// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/detail/signal_blocker.hpp>
#include <tactus/midi/jack/client.hpp>
#include <tactus/midi/jack_messages.hpp>
#include <tactus/midi/rtmidi_close.hpp>

#include <RtMidi.h>
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

// Finding MIDI ports: which backend to use (RtMidi's ALSA sequencer, tactus's native JACK
// backend, or RtMidi's JACK client), listing input and
// output port names, and opening a port by a case-insensitive piece of its name. input.hpp and
// output.hpp build on this; use it directly to show the user what is there:
//
//   for (auto& name : tactus::midi::input_ports()) std::cout << name << '\n';
//
// (with no MIDI backend at all, no JACK server and no ALSA sequencer, it throws backend_unavailable)
//
// Every function here creates a short-lived client (RtMidi's, or a libjack client for the native
// JACK backend): call them from any thread, but not from a realtime thread (they allocate and
// talk to the MIDI server). Clients are created with every signal blocked in the calling thread
// (tactus/detail/signal_blocker.hpp), so the threads RtMidi and libjack start never take SIGINT.

namespace tactus::midi {

/// The MIDI backend. `automatic` tries the ALSA sequencer, then JACK, and takes the first that
/// works (a JACK server must be running for JACK to count as working).
///  - alsa: RtMidi's ALSA sequencer client.
///  - jack: tactus's native libjack backend: input stamped with its frame, output written at the
///    frame of its time (output::send_at), xruns, lost events and server loss reported.
///  - jack_rtmidi: RtMidi's own JACK client, kept for comparison (bench/): what it receives is
///    stamped when its process callback runs, what it sends lands at frame 0 of the next period
///    (send_at included); a dead server makes its send spin (see output::send).
enum class api { automatic, alsa, jack, jack_rtmidi };

/// Selects opening a virtual port (one that other programs connect to) instead of an existing one.
struct virtual_port_t {
  explicit virtual_port_t() = default;
};
inline constexpr virtual_port_t virtual_port{};

constexpr std::string_view to_string(api a) noexcept {
  switch (a) {
    case api::alsa: return "alsa";
    case api::jack: return "jack";
    case api::jack_rtmidi: return "jack_rtmidi";
    default: return "automatic";
  }
}

/// Thrown when no requested backend can be opened; what() is one line naming each backend tried
/// and why it failed, e.g. "... (tried alsa: /dev/snd/seq does not exist ...; jack: no JACK server
/// "default" answers (libjack: Cannot connect to server socket err = No such file or directory))".
class backend_unavailable : public std::runtime_error {
 public:
  explicit backend_unavailable(std::vector<std::string> attempts)
      : std::runtime_error(make_what(attempts)), attempts_(std::move(attempts)) {}
  /// One "backend: reason" line per backend tried, in the order tried.
  const std::vector<std::string>& attempts() const noexcept { return attempts_; }

 private:
  static std::string make_what(const std::vector<std::string>& attempts) {
    std::string s = "tactus::midi: no MIDI backend available (tried ";
    for (auto& a : attempts) s += (&a == &attempts.front() ? "" : "; ") + a;
    return s + ")";
  }
  std::vector<std::string> attempts_;
};

/// Thrown when no port name contains the requested text; what() lists the available ports.
class port_not_found : public std::runtime_error {
 public:
  port_not_found(std::string wanted, std::string_view kind, std::vector<std::string> available)
      : std::runtime_error(make_what(wanted, kind, available)),
        wanted_(std::move(wanted)),
        available_(std::move(available)) {}
  const std::string& wanted() const noexcept { return wanted_; }
  const std::vector<std::string>& available() const noexcept { return available_; }

 private:
  static std::string make_what(const std::string& wanted, std::string_view kind,
                               const std::vector<std::string>& available) {
    std::string s = "tactus::midi: no MIDI " + std::string(kind) + " port matches \"" + wanted + "\"";
    if (available.empty()) return s + " (there are no " + std::string(kind) + " ports)";
    s += "; available " + std::string(kind) + " ports:";
    for (auto& a : available) s += "\n  " + a;
    return s;
  }
  std::string wanted_;
  std::vector<std::string> available_;
};

namespace detail {

/// Collects what RtMidi reports through its error callback, so that nothing is printed to
/// stderr and nothing is thrown from inside RtMidi. Thread-safe: RtMidi's ALSA thread may report.
class rtmidi_errors {
 public:
  struct entry {
    RtMidiError::Type type;
    std::string text;
    bool is_warning() const noexcept { return type == RtMidiError::WARNING || type == RtMidiError::DEBUG_WARNING; }
  };

  static void callback(RtMidiError::Type type, const std::string& text, void* self) {
    auto* me = static_cast<rtmidi_errors*>(self);
    std::lock_guard lock(me->mutex_);
    me->entries_.push_back({type, text});
  }

  std::vector<entry> take() {
    std::lock_guard lock(mutex_);
    return std::exchange(entries_, {});
  }

  /// Takes the collected entries and throws the first real error (not a warning) as
  /// std::runtime_error prefixed with `what`; returns the warnings otherwise.
  std::vector<entry> take_or_throw(std::string_view what) {
    auto all = take();
    for (auto& e : all)
      if (!e.is_warning()) throw std::runtime_error("tactus::midi: " + std::string(what) + ": " + e.text);
    return all;
  }

 private:
  std::mutex mutex_;
  std::vector<entry> entries_;
};

/// Deletes an RtMidiIn or RtMidiOut after quiesce() (see rtmidi_close.hpp).
struct rtmidi_deleter {
  template <class RtMidiT>
  void operator()(RtMidiT* m) const noexcept {
    quiesce(*m);
    delete m;
  }
};

/// An RtMidiIn or RtMidiOut whose errors go to `errors` (declared first: it outlives the client),
/// closed safely. Reset `midi` before replacing the whole client. For the native JACK backend
/// (backend == api::jack) `midi` stays empty: the caller opens a jack::input_port or
/// jack::output_port instead.
template <class RtMidiT>
struct rtmidi_client {
  std::unique_ptr<rtmidi_errors> errors = std::make_unique<rtmidi_errors>();
  std::unique_ptr<RtMidiT, rtmidi_deleter> midi;
  api backend = api::automatic;
  bool native() const noexcept { return backend == api::jack; }
  /// An RtMidi client is open, or the native backend was chosen.
  bool usable() const noexcept { return midi != nullptr || native_ok; }
  bool native_ok = false;
};

inline std::string lower(std::string_view s) {
  std::string r(s);
  std::transform(r.begin(), r.end(), r.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return r;
}

template <class RtMidiT>
inline RtMidiT* construct_rtmidi(RtMidi::Api a, const std::string& client_name) {
  tactus::detail::signal_blocker blocked;  // RtMidi's (and libjack's) threads start with every signal blocked
  if constexpr (std::is_same_v<RtMidiT, RtMidiIn>) return new RtMidiIn(a, client_name, 100);
  else return new RtMidiOut(a, client_name);
}

/// Opens one backend, or returns null and appends "backend: reason" to `attempts`.
template <class RtMidiT>
rtmidi_client<RtMidiT> try_backend(api which, const std::string& client_name, std::vector<std::string>& attempts) {
  rtmidi_client<RtMidiT> c;
  c.backend = which;
  if (which == api::alsa) {
    // Without the sequencer device RtMidi throws, and alsa-lib prints to stderr first: skip it.
    std::error_code ec;
    if (!std::filesystem::exists("/dev/snd/seq", ec)) {
      attempts.push_back(
          "alsa: /dev/snd/seq does not exist (no ALSA sequencer: is snd-seq loaded, "
          "is /dev/snd visible in this container?)");
      return c;
    }
  }
  if (which == api::jack) {  // native: a server answering is all it takes
    if (auto problem = jack_server_problem(client_name + "-probe")) attempts.push_back("jack: " + *problem);
    else c.native_ok = true;
    return c;
  }
  if (which == api::jack_rtmidi) {
    // Ask libjack first whether a server answers, its messages captured: RtMidi's JACK client,
    // when none does, prints libjack's lines and its own warning to stderr before we could set
    // its error callback (and RtMidi 5.0.0's JACK output leaks its ring buffers).
    if (auto problem = jack_server_problem(client_name + "-probe")) {
      attempts.push_back("jack: " + *problem);
      return c;
    }
  }
  const auto rt_api = which == api::alsa ? RtMidi::LINUX_ALSA : RtMidi::UNIX_JACK;
  try {
    c.midi.reset(construct_rtmidi<RtMidiT>(rt_api, client_name));
    c.midi->setErrorCallback(&rtmidi_errors::callback, c.errors.get());
    // RtMidi's JACK backend only warns when no server answers; getPortCount() retries the
    // connection and reports the same warning to our callback.
    {
      tactus::detail::signal_blocker blocked;  // RtMidi's JACK client connects (and starts threads) here
      (void)c.midi->getPortCount();
    }
    auto errs = c.errors->take();
    if (!errs.empty()) {
      std::string why = errs.front().text;
      if (which == api::jack_rtmidi) {
        const char* server = std::getenv("JACK_DEFAULT_SERVER");
        why += std::string(" (JACK server \"") + (server ? server : "default") + "\")";
      }
      attempts.push_back(std::string(to_string(which)) + ": " + why);
      c.midi.reset();
    }
  } catch (const RtMidiError& e) {
    attempts.push_back(std::string(to_string(which)) + ": " + e.getMessage());
    c.midi.reset();
  } catch (const std::exception& e) {
    attempts.push_back(std::string(to_string(which)) + ": " + e.what());
    c.midi.reset();
  }
  return c;
}

/// Opens a client on the requested backend; throws backend_unavailable listing every attempt.
template <class RtMidiT>
rtmidi_client<RtMidiT> open_client(api requested, const std::string& client_name) {
  std::vector<std::string> attempts;
  const std::vector<api> order =
      requested == api::automatic ? std::vector<api>{api::alsa, api::jack} : std::vector<api>{requested};
  for (auto which : order) {
    auto c = try_backend<RtMidiT>(which, client_name, attempts);
    if (c.usable()) return c;
  }
  throw backend_unavailable(std::move(attempts));
}

inline std::vector<std::string> port_names(RtMidi& midi);

/// The port names of `c`: through RtMidi, or (native) through a libjack client of its own.
template <class RtMidiT>
std::vector<std::string> port_names(rtmidi_client<RtMidiT>& c) {
  if (c.native()) return jack::list_ports(std::is_same_v<RtMidiT, RtMidiIn>);
  return port_names(*c.midi);
}

/// The first of `names` containing `wanted`, ignoring case; throws port_not_found.
inline std::string match_port(const std::vector<std::string>& names, std::string_view wanted, std::string_view kind) {
  const auto key = lower(wanted);
  for (auto& n : names)
    if (lower(n).find(key) != std::string::npos) return n;
  throw port_not_found(std::string(wanted), kind, names);
}

inline std::vector<std::string> port_names(RtMidi& midi) {
  std::vector<std::string> names;
  const unsigned n = midi.getPortCount();
  names.reserve(n);
  for (unsigned i = 0; i < n; ++i) names.push_back(midi.getPortName(i));
  return names;
}

/// Index of the first port whose name contains `wanted`, ignoring case; throws port_not_found.
inline unsigned find_port(RtMidi& midi, std::string_view wanted, std::string_view kind) {
  const auto names = port_names(midi);
  const auto key = lower(wanted);
  for (unsigned i = 0; i < names.size(); ++i)
    if (lower(names[i]).find(key) != std::string::npos) return i;
  throw port_not_found(std::string(wanted), kind, names);
}

}  // namespace detail

/// The backend `automatic` resolves to here and now (throws backend_unavailable if none works).
/// Thread-safe: yes. Realtime-safe: no.
inline api available_api(api requested = api::automatic) {
  return detail::open_client<RtMidiIn>(requested, "tactus-probe").backend;
}

/// Names of the MIDI input ports (sources we can read from), in the backend's order. With JACK
/// these are full port names, "client:port". Thread-safe: yes. Realtime-safe: no.
/// Throws backend_unavailable when no backend works.
inline std::vector<std::string> input_ports(api backend = api::automatic) {
  auto c = detail::open_client<RtMidiIn>(backend, "tactus-probe");
  return detail::port_names(c);
}

/// Names of the MIDI output ports (destinations we can write to). As input_ports().
inline std::vector<std::string> output_ports(api backend = api::automatic) {
  auto c = detail::open_client<RtMidiOut>(backend, "tactus-probe");
  return detail::port_names(c);
}

/// The first input port whose name contains `wanted`, ignoring case ("circuit" finds
/// "Circuit:Circuit MIDI 1"). Several matches: the first in the backend's order wins; pass a
/// longer piece of the name to choose. Throws port_not_found (listing the ports) or
/// backend_unavailable. Thread-safe: yes. Realtime-safe: no.
inline std::string find_input_port(std::string_view wanted, api backend = api::automatic) {
  auto c = detail::open_client<RtMidiIn>(backend, "tactus-probe");
  return detail::match_port(detail::port_names(c), wanted, "input");
}

/// As find_input_port(), for output ports.
inline std::string find_output_port(std::string_view wanted, api backend = api::automatic) {
  auto c = detail::open_client<RtMidiOut>(backend, "tactus-probe");
  return detail::match_port(detail::port_names(c), wanted, "output");
}

}  // namespace tactus::midi
