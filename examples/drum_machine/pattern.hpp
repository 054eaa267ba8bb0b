// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <algorithm>
#include <cctype>
#include <charconv>
#include <istream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

// What the drum machine plays: a pattern of 16th-note steps, drum rows plus a bass line, the
// built-in patterns, and the text format they are written in (also read by --pattern-file):
//
//     # a comment; blank lines are ignored
//     name:  my groove                   optional
//     kick:  X...x...X...x...            one character a step: x hit, X accent, . rest
//     snare: ....X.......X..x            spaces and | may group the steps: x... x... | ...
//     hat:   x.x.x.x.x.x.x.x.
//     49:    X...............            a number names any MIDI key (49: crash)
//     bass:  C2 . C2 C3 . - D#2! .  ...  one token a step: a note, . rest, - hold the note before
//
// Drum names: kick 36, snare 38, clap 39, hat (closed) 42, open (open hat) 46, tom 45, rim 37,
// crash 49, ride 51 (General MIDI; the drum machine's --drum-key NAME=KEY changes them). Bass notes are names with an
// octave, C4 = 60 so C2 = 36 (C, C#, Db ... B; e.g. A1, F#2, Eb3), or MIDI numbers 0..127; a
// trailing ! accents the note. Every row has the same number of steps (1..64, 16 a bar). Errors
// name the line: "groove.txt:4: kick has 15 steps, the pattern has 16 (line 3)".

namespace drum_machine {

inline constexpr int steps_per_beat = 4;  // 16th notes
inline constexpr int normal_velocity = 90;
inline constexpr int accent_velocity = 127;

struct drum_row {
  std::string name;        // "kick", or the key number as written
  int key = 0;             // MIDI key
  std::vector<int> steps;  // velocity a step, 0 = rest
};

struct bass_step {
  int key = -1;  // -1: rest
  int velocity = 0;
  int length = 0;  // in steps, ties included; 0 on rests and held steps
};

struct pattern {
  std::string name;
  std::vector<drum_row> drums;
  std::vector<bass_step> bass;  // empty: no bass line
  int steps() const {
    return drums.empty() ? static_cast<int>(bass.size()) : static_cast<int>(drums.front().steps.size());
  }
};

/// A pattern that does not parse: what() is "source:line: reason".
class pattern_error : public std::runtime_error {
 public:
  pattern_error(const std::string& source, int line, const std::string& what)
      : std::runtime_error(source + ":" + std::to_string(line) + ": " + what), line_(line) {}
  int line() const noexcept { return line_; }

 private:
  int line_;
};

/// The General MIDI key of a drum name, or nullopt.
inline std::optional<int> drum_key(std::string_view name) {
  struct entry {
    std::string_view name;
    int key;
  };
  static constexpr entry table[] = {{"kick", 36}, {"rim", 37},  {"snare", 38}, {"clap", 39}, {"hat", 42},
                                    {"tom", 45},  {"open", 46}, {"crash", 49}, {"ride", 51}};
  for (auto& e : table)
    if (e.name == name) return e.key;
  return std::nullopt;
}

/// "C2" -> 36, "D#2" -> 39, "Eb3" -> 51, "40" -> 40; nullopt if it is neither.
inline std::optional<int> note_number(std::string_view s) {
  if (s.empty()) return std::nullopt;
  if (std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); })) {
    if (s.size() > 3) return std::nullopt;
    int n = 0;
    std::from_chars(s.data(), s.data() + s.size(), n);  // at most three digits
    return n <= 127 ? std::optional<int>(n) : std::nullopt;
  }
  static constexpr int semitone[] = {9, 11, 0, 2, 4, 5, 7};  // A B C D E F G
  const char letter = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  if (letter < 'A' || letter > 'G') return std::nullopt;
  int n = semitone[letter - 'A'];
  std::size_t i = 1;
  if (i < s.size() && (s[i] == '#' || s[i] == 'b')) n += s[i++] == '#' ? 1 : -1;
  const auto octave = s.substr(i);
  const bool negative = !octave.empty() && octave[0] == '-';
  const auto digits = octave.substr(negative ? 1 : 0);
  if (digits.size() != 1 || !std::isdigit(static_cast<unsigned char>(digits[0]))) return std::nullopt;
  n += 12 * ((negative ? -(digits[0] - '0') : digits[0] - '0') + 1);
  return n >= 0 && n <= 127 ? std::optional<int>(n) : std::nullopt;
}

/// Parses the text format above. `source` names the text in errors (a file name). Throws
/// pattern_error naming the line of the first problem.
inline pattern parse_pattern(std::istream& in, const std::string& source = "pattern") {
  pattern p;
  int line_no = 0, steps_line = 0, bass_line = 0;
  auto fail = [&](const std::string& why) -> void { throw pattern_error(source, line_no, why); };
  auto check_steps = [&](const std::string& row, std::size_t n) {
    if (n < 1 || n > 64) fail(row + " has " + std::to_string(n) + " steps, expected 1 to 64");
    if (steps_line == 0) {
      steps_line = line_no;
    } else if (static_cast<int>(n) != p.steps()) {
      fail(row + " has " + std::to_string(n) + " steps, the pattern has " + std::to_string(p.steps()) + " (line " +
           std::to_string(steps_line) + ")");
    }
  };

  for (std::string line; std::getline(in, line);) {
    ++line_no;
    // A comment starts with # at the start of a line or after a blank (D#2 is a note).
    for (std::size_t i = 0; i < line.size(); ++i)
      if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) line.erase(i);
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos) fail("expected \"name: steps\", e.g. \"kick: x...x...x...x...\"");
    std::string key = line.substr(0, colon), body = line.substr(colon + 1);
    key.erase(0, key.find_first_not_of(" \t"));
    key.erase(key.find_last_not_of(" \t") + 1);
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
    if (key.empty()) fail("a row needs a name before ':'");

    if (key == "name") {
      body.erase(0, body.find_first_not_of(" \t"));
      body.erase(body.find_last_not_of(" \t\r") + 1);
      p.name = body;
    } else if (key == "bass") {
      if (bass_line) fail("a second bass line (the first is on line " + std::to_string(bass_line) + ")");
      bass_line = line_no;
      std::istringstream tokens(body);
      for (std::string t; tokens >> t;) {
        if (t == "|") continue;
        if (t == ".") {
          p.bass.push_back({});
        } else if (t == "-") {
          auto held = std::find_if(p.bass.rbegin(), p.bass.rend(), [](auto& s) { return s.length > 0; });
          if (p.bass.empty() || p.bass.back().key < 0) fail("'-' holds a note, but no note comes before it");
          ++held->length;
          p.bass.push_back({p.bass.back().key, 0, 0});
        } else {
          const bool accent = t.back() == '!';
          if (accent) t.pop_back();
          const auto n = note_number(t);
          if (!n) fail("bad bass note \"" + t + "\": use a name with an octave (C2, F#1, Eb3), a MIDI number, . or -");
          p.bass.push_back({*n, accent ? accent_velocity : normal_velocity + 10, 1});
        }
      }
      check_steps("bass", p.bass.size());
    } else {
      auto k = drum_key(key);
      if (!k) k = note_number(key);
      if (!k || !std::all_of(key.begin(), key.end(), [](unsigned char c) { return std::isalnum(c); }))
        fail("unknown row \"" + key +
             "\": use kick, snare, clap, hat, open, tom, rim, crash, ride, a MIDI key number, "
             "bass or name");
      for (auto& d : p.drums)
        if (d.key == *k) fail("a second row for key " + std::to_string(*k) + " (" + key + ")");
      drum_row row{key, *k, {}};
      for (char c : body) {
        if (c == 'x') row.steps.push_back(normal_velocity);
        else if (c == 'X') row.steps.push_back(accent_velocity);
        else if (c == '.' || c == '-') row.steps.push_back(0);
        else if (c == ' ' || c == '\t' || c == '|' || c == '\r') continue;
        else fail(std::string("unexpected '") + c + "' in " + key + ": use x (hit), X (accent) or . (rest)");
      }
      check_steps(key, row.steps.size());
      p.drums.push_back(std::move(row));
    }
  }
  if (p.drums.empty() && p.bass.empty()) throw pattern_error(source, line_no, "no rows: the pattern is empty");
  return p;
}

inline pattern parse_pattern(std::string_view text, const std::string& source = "pattern") {
  std::istringstream in{std::string(text)};
  return parse_pattern(in, source);
}

/// The built-in patterns, by name, in the text format.
struct builtin {
  std::string_view name;
  std::string_view text;
};
inline constexpr builtin builtins[] = {
    {"four-on-the-floor", R"(
kick:  X...x...X...x...
snare: ....X.......X...
hat:   ..x...x...x...x.
open:  ..............x.
bass:  C2 . C3 . C2 . C3 . A#1 . A#2 . G1 . G2 .
)"},
    {"breakbeat", R"(
kick:  X.x.......x.x...
snare: ....X..x.x..X..x
hat:   x.x.x.x.x.x.x.X.
bass:  E1 - . E1 . . G1 . E1 - . . D2 . B1 .
)"},
    {"electro", R"(
kick:  X.....x...X.....
clap:  ....X.......X...
hat:   x.xxx.xxx.xxx.xX
open:  ......x.......x.
bass:  F1 F1 . F2 . F1 . D#2 F1 . F2 . G#1 - A#1 C2!
)"},
    {"acid", R"(
kick:  X...X...X...X...
hat:   ..x...x...x...x.
clap:  ....x.......x...
bass:  A1 A2! . A1 C2 . A1 G2! A1 . D#2 A1 - C2! A2 .
)"},
};

/// A built-in pattern by name; throws std::invalid_argument listing the names.
inline pattern builtin_pattern(std::string_view name) {
  std::string names;
  for (auto& b : builtins) {
    if (b.name == name) {
      auto p = parse_pattern(b.text, std::string(b.name));
      p.name = b.name;
      return p;
    }
    names += (names.empty() ? "" : ", ") + std::string(b.name);
  }
  throw std::invalid_argument("no built-in pattern \"" + std::string(name) + "\" (there are " + names + ")");
}

}  // namespace drum_machine
