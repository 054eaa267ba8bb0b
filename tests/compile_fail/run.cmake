# SPDX-License-Identifier: BSL-1.0
# Compiles SOURCE, which must fail with an error that contains EXPECT, in at most MAX_ERRORS
# "error:" lines (a clear message, not a page of template instantiations).
#   cmake -DCXX=... -DINCLUDE=... -DSOURCE=... -DEXPECT=... -DMAX_ERRORS=3 -P run.cmake
execute_process(
  COMMAND ${CXX} -std=c++20 -fsyntax-only -DASIO_STANDALONE -DASIO_NO_DEPRECATED -I${INCLUDE} ${SOURCE}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but must not")
endif()
string(FIND "${err}" "${EXPECT}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "the compiler's message does not say \"${EXPECT}\":\n${err}")
endif()
string(REGEX MATCHALL "error:" errors "${err}")
list(LENGTH errors n)
if(n GREATER MAX_ERRORS)
  message(FATAL_ERROR "${n} error lines (at most ${MAX_ERRORS} wanted):\n${err}")
endif()
message(STATUS "failed as expected, ${n} error line(s), saying: ${EXPECT}")
