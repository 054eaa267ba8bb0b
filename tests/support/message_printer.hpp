// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/message.hpp>

#include "catch.hpp"

#include <string>

// Catch2 prints a tactus::midi::message in failed assertions as its to_string() form.

namespace Catch {
template <>
struct StringMaker<tactus::midi::message> {
  static std::string convert(const tactus::midi::message& m) { return m.to_string(); }
};
}  // namespace Catch
