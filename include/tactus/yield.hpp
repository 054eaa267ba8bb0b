// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <asio/awaitable.hpp>
#include <asio/post.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

// Cooperative yield: asyncio's `await asyncio.sleep(0)`. A coroutine that works through a long
// batch without awaiting anything keeps every other handler of its executor waiting (timers, a
// metronome's beats, MIDI); awaiting tactus::yield() now and then lets them run:
//
//   for (int i = 0; i < 1000; ++i) {
//     crunch(i);                            // a slice of CPU-bound work
//     co_await tactus::yield();             // what is queued meanwhile runs now
//   }

namespace tactus {

/// Suspends the calling coroutine and resumes it on its executor after the handlers already
/// queued there (a post to the back of the queue): handlers and coroutines ready before the call
/// run first. Not a sleep: with nothing else queued it resumes at once.
///
/// A coroutine whose cancellation was requested before it yields (terminal cancellation of a
/// co_spawn, the losing side of `||`) throws std::system_error(operation_aborted) here, as at
/// any of its awaits, so a loop that only yields still ends when cancelled. Thread-safe: as any
/// co_await (from the coroutine itself). Realtime-safe: no (a post allocates).
inline asio::awaitable<void> yield() { co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable); }

}  // namespace tactus
