// SPDX-License-Identifier: BSL-1.0
#pragma once

// Test support: which sanitizer this test was built with, for g++ (__SANITIZE_*__) and clang
// (__has_feature). TACTUS_TEST_TSAN: ThreadSanitizer, under which every thread runs several
// times slower and JACK runs 512-frame cycles, so real-clock figures are reported rather than
// asserted. TACTUS_TEST_SANITIZED: ThreadSanitizer or AddressSanitizer, which print their own
// crash reports.

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TACTUS_TEST_TSAN 1
#endif
#if __has_feature(address_sanitizer)
#define TACTUS_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) && !defined(TACTUS_TEST_TSAN)
#define TACTUS_TEST_TSAN 1
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(TACTUS_TEST_ASAN)
#define TACTUS_TEST_ASAN 1
#endif
#if defined(TACTUS_TEST_TSAN) || defined(TACTUS_TEST_ASAN)
#define TACTUS_TEST_SANITIZED 1
#endif
