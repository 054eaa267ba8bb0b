// SPDX-License-Identifier: BSL-1.0
#include <tactus/midi/parser.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

// libFuzzer target for tactus::midi::parser; not part of ctest. tests/fuzz/run.sh builds it, replays
// tests/fuzz/corpus/parser and fuzzes for a while (CI: 30 s); by hand:
//
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude \
//     tests/fuzz/midi_parser_fuzz.cpp -o build/fuzz/midi_parser_fuzz
//   build/fuzz/midi_parser_fuzz -max_total_time=300 build/fuzz/corpus-parser
//
// The first input byte picks the sysex bound (2..257 bytes, so overflow is reachable); the
// rest is the stream. Invariants checked (abort on violation): every message passes
// message::from_bytes, the message counter matches the callbacks, sysex stays within the
// bound, and byte-at-a-time feeding gives the same messages and counters as one shot.

namespace {

struct result {
  std::vector<std::vector<std::uint8_t>> out;
  tactus::midi::parser::stats stats;
};

result parse(std::span<const std::uint8_t> in, std::size_t max_sysex, bool bytewise) {
  tactus::midi::parser p{max_sysex};
  result r;
  auto collect = [&](const tactus::midi::message& m) {
    const auto b = m.bytes();
    if (!tactus::midi::message::from_bytes(b)) std::abort();
    if (b[0] == 0xF0 && b.size() > p.max_sysex_size()) std::abort();
    r.out.emplace_back(b.begin(), b.end());
  };
  if (bytewise) {
    for (const auto b : in) p.feed(b, collect);
  } else {
    p.feed(in, collect);
  }
  r.stats = p.statistics();
  if (r.stats.messages != r.out.size()) std::abort();
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t max_sysex = 2 + data[0];
  const std::span<const std::uint8_t> in(data + 1, size - 1);
  const auto whole = parse(in, max_sysex, false);
  const auto bytewise = parse(in, max_sysex, true);
  if (whole.out != bytewise.out || !(whole.stats == bytewise.stats)) std::abort();
  return 0;
}
