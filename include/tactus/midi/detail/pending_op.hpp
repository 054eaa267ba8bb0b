// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/detail/pending_op.hpp>

// The MIDI layer's name for the core's pending operation (tactus/detail/pending_op.hpp), which
// moved there when tactus::thread_channel came to share it with midi::input and
// midi::port_watcher. One implementation; these are aliases.

namespace tactus::midi::detail {

using tactus::detail::completion;
using tactus::detail::make_pending_op;
using tactus::detail::pending_op;

}  // namespace tactus::midi::detail
