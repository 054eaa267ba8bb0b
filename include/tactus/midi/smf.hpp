// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/smf_reader.hpp>
#include <tactus/midi/smf_writer.hpp>

// Standard MIDI Files (.mid, SMF format 0 and 1), both ways: smf_reader.hpp parses a file
// (smf_read, smf_file, and ticks back to time across its tempo map with smf_file::time_at);
// smf_writer.hpp records messages and tempo changes, stamped with the time since recording
// began or with a tick, and writes the file. Standard library only.
//
//   tactus::midi::smf_writer w{480, std::chrono::microseconds{500'000}};  // 480 ticks/quarter, 120 bpm
//   w.add(now - start, tactus::midi::message::note_on(9, 36, 100));
//   w.set_tempo(now - start, tactus::bpm{97.3});
//   w.write("take.mid");
//   auto file = tactus::midi::smf_read("take.mid");
//   auto when = file.time_at(file.tracks[0].events[0].tick);
