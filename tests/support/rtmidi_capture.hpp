// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/message.hpp>
#include <tactus/midi/rtmidi_close.hpp>

#include <RtMidi.h>
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

// Test support: a raw JACK MIDI input port "<client>:in" on the current JACK_DEFAULT_SERVER that
// records what it hears, through RtMidi's JACK API directly (independent of tactus's input):
//
//   tactus_tests::rtmidi_capture cap("cmcap");    // an example sends to "cmcap:in"
//   cap.wait_for(3, 2s);
//   for (auto& m : cap.messages()) ...

namespace tactus_tests {

class rtmidi_capture {
 public:
  explicit rtmidi_capture(const std::string& client) : in_(RtMidi::UNIX_JACK, client) {
    in_.ignoreTypes(false, false, false);
    in_.setCallback(&rtmidi_capture::callback, this);
    in_.openVirtualPort("in");
  }
  ~rtmidi_capture() { tactus::midi::quiesce(in_); }  // RtMidi's own close can crash libjack
  rtmidi_capture(const rtmidi_capture&) = delete;
  rtmidi_capture& operator=(const rtmidi_capture&) = delete;

  std::vector<tactus::midi::message> messages() {
    std::lock_guard lock(mutex_);
    return got_;
  }
  std::size_t size() {
    std::lock_guard lock(mutex_);
    return got_.size();
  }
  /// How many of the messages heard satisfy `pred`.
  std::size_t count(bool (*pred)(const tactus::midi::message&)) {
    std::lock_guard lock(mutex_);
    return std::size_t(std::count_if(got_.begin(), got_.end(), pred));
  }
  /// What arrived since the last take(), forgotten here.
  std::vector<tactus::midi::message> take() {
    std::lock_guard lock(mutex_);
    return std::exchange(got_, {});
  }
  /// Waits until `n` messages arrived or `timeout` passed; returns how many arrived.
  std::size_t wait_for(std::size_t n, std::chrono::steady_clock::duration timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (size() < n && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return size();
  }

 private:
  static void callback(double, std::vector<unsigned char>* b, void* self) {
    auto* me = static_cast<rtmidi_capture*>(self);
    if (auto m = tactus::midi::message::from_bytes(*b)) {
      std::lock_guard lock(me->mutex_);
      me->got_.push_back(*m);
    }
  }
  std::mutex mutex_;
  std::vector<tactus::midi::message> got_;
  RtMidiIn in_;  // last: destroyed (stopping its callback) before what the callback uses
};

}  // namespace tactus_tests
