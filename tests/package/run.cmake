# SPDX-License-Identifier: BSL-1.0
# The package test (ctest package_consumer): can a downstream project use tactus?
#
#   cmake -DSOURCE_DIR=<tactus> -DBINARY_DIR=<scratch> -DGENERATOR=<gen> -DCXX=<c++> [-DWITH_LINK=ON] -P run.cmake
#
# 1. configures the tactus source tree alone (no tests, examples, benchmarks) and installs it
#    into <scratch>/prefix;
# 2. builds tests/package/consumer against that prefix (find_package(tactus 0.1)) and runs it;
# 3. builds tests/package/subdir, which vendors tactus with add_subdirectory(), and runs it.
cmake_minimum_required(VERSION 3.25)

foreach(v IN ITEMS SOURCE_DIR BINARY_DIR GENERATOR CXX)
  if(NOT DEFINED ${v} OR "${${v}}" STREQUAL "")
    message(FATAL_ERROR "package test: -D${v}=... is required")
  endif()
endforeach()

set(here ${SOURCE_DIR}/tests/package)
set(prefix ${BINARY_DIR}/prefix)
file(REMOVE_RECURSE ${BINARY_DIR})
file(MAKE_DIRECTORY ${BINARY_DIR})

# Runs a command; on failure prints its output and stops with `what` as the reason.
function(step what)
  message(STATUS "package test: ${what}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    string(JOIN " " cmd ${ARGN})
    message(FATAL_ERROR "package test FAILED: ${what}\n  command: ${cmd}\n  exit: ${rc}\n${out}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

# The consumer configurations see neither the user's package registry nor a system-wide tactus.
set(isolated -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)
set(common -G ${GENERATOR} -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=Debug)

# --- 1. install -----------------------------------------------------------------------------
step("configure tactus for installation"
  ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${BINARY_DIR}/build ${common}
    -DTACTUS_BUILD_TESTS=OFF -DTACTUS_BUILD_EXAMPLES=OFF -DTACTUS_BUILD_BENCH=OFF
    -DTACTUS_INSTALL=ON -DTACTUS_WITH_MIDI=ON -DCMAKE_INSTALL_PREFIX=${prefix})
step("build tactus (header-only: generates the package files)" ${CMAKE_COMMAND} --build ${BINARY_DIR}/build)
step("install tactus into ${prefix}" ${CMAKE_COMMAND} --install ${BINARY_DIR}/build)

# GNUInstallDirs' include/ and share/ (it cannot be included in script mode without a warning).
foreach(f IN ITEMS
    include/tactus/tactus.hpp
    include/tactus/metronome.hpp
    include/tactus/testing/manual_clock.hpp
    include/tactus/midi/message.hpp
    share/cmake/tactus/tactusConfig.cmake
    share/cmake/tactus/tactusConfigVersion.cmake
    share/cmake/tactus/tactusTargets.cmake
    share/cmake/tactus/FindAsio.cmake
    share/doc/tactus/LICENSE)
  if(NOT EXISTS ${prefix}/${f})
    message(FATAL_ERROR "package test FAILED: the install did not produce ${prefix}/${f}")
  endif()
endforeach()

# --- 2. find_package(tactus) against the prefix ---------------------------------------------
step("configure the consumer with find_package(tactus 0.1)"
  ${CMAKE_COMMAND} -S ${here}/consumer -B ${BINARY_DIR}/consumer ${common} ${isolated}
    -DCMAKE_PREFIX_PATH=${prefix})
step("build the consumer" ${CMAKE_COMMAND} --build ${BINARY_DIR}/consumer)
step("run the consumer (metronome on manual_clock)" ${BINARY_DIR}/consumer/consumer)
message(STATUS "${step_output}")
step("run the MIDI consumer (tactus::midi)" ${BINARY_DIR}/consumer/consumer_midi)
# tactus::link: built and run when tactus found Ableton Link (-DWITH_LINK=ON from the suite).
if(WITH_LINK)
  if(NOT EXISTS ${BINARY_DIR}/consumer/consumer_link)
    message(FATAL_ERROR "package test FAILED: tactus was built with Link, but find_package(tactus) gave no tactus::link")
  endif()
  step("run the Link consumer (tactus::link)" ${BINARY_DIR}/consumer/consumer_link)
endif()

# find_package(tactus <args>) in a throw-away project: `expect` is ACCEPT or REJECT.
function(find_package_case name expect args)
  set(dir ${BINARY_DIR}/find_${name})
  file(WRITE ${dir}/CMakeLists.txt
    "cmake_minimum_required(VERSION 3.25)\nproject(${name} LANGUAGES CXX)\nfind_package(tactus ${args})\n")
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${dir} -B ${dir}/build ${common} ${isolated} -DCMAKE_PREFIX_PATH=${prefix}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(expect STREQUAL "ACCEPT" AND NOT rc EQUAL 0)
    message(FATAL_ERROR "package test FAILED: find_package(tactus ${args}) should succeed\n${out}")
  elseif(expect STREQUAL "REJECT" AND rc EQUAL 0)
    message(FATAL_ERROR "package test FAILED: find_package(tactus ${args}) should fail\n${out}")
  endif()
endfunction()
message(STATUS "package test: find_package versions and components")
find_package_case(components ACCEPT "0.1.0 REQUIRED COMPONENTS core midi")
find_package_case(newer_minor REJECT "0.2 REQUIRED")  # SameMinorVersion: 0.1.x only
find_package_case(next_major REJECT "1.0 REQUIRED")
find_package_case(bad_component REJECT "0.1 REQUIRED COMPONENTS no_such_component")

# --- 3. add_subdirectory(tactus) -------------------------------------------------------------
step("configure the consumer that vendors tactus with add_subdirectory"
  ${CMAKE_COMMAND} -S ${here}/subdir -B ${BINARY_DIR}/subdir ${common} -DTACTUS_SOURCE_DIR=${SOURCE_DIR})
step("build the add_subdirectory consumer" ${CMAKE_COMMAND} --build ${BINARY_DIR}/subdir)
step("run the add_subdirectory consumer" ${BINARY_DIR}/subdir/consumer)
step("run the add_subdirectory MIDI consumer" ${BINARY_DIR}/subdir/consumer_midi)
# As a subdirectory tactus installs nothing into its parent project's package.
step("install the add_subdirectory consumer" ${CMAKE_COMMAND} --install ${BINARY_DIR}/subdir --prefix ${BINARY_DIR}/subdir-prefix)
if(EXISTS ${BINARY_DIR}/subdir-prefix/include/tactus)
  message(FATAL_ERROR "package test FAILED: tactus installed its headers as a subdirectory (TACTUS_INSTALL should default OFF)")
endif()

message(STATUS "package test: passed (install + find_package, add_subdirectory)")
