# SPDX-License-Identifier: BSL-1.0
# tactus_link_asio_namespace(<target>): the name Ableton Link gives its Asio, on <target>.
# Link 3.1 (Debian 13) compiles Asio as link_asio_X_Y_Z (AsioWrapper.hpp); tactus/link/session.hpp
# makes that name an alias of the system's Asio and needs to know it: TACTUS_LINK_ASIO_NAMESPACE,
# read from the Link found here (the header's default is Link 3.1's link_asio_1_28_0) and exported
# with tactus::link. Link 3.0 (Debian 12) names none: nothing is set.
function(tactus_link_asio_namespace target)
  get_target_property(includes Ableton::Link INTERFACE_INCLUDE_DIRECTORIES)
  foreach(dir IN LISTS includes)
    set(wrapper "${dir}/ableton/platforms/asio/AsioWrapper.hpp")
    if(EXISTS "${wrapper}")
      file(STRINGS "${wrapper}" line REGEX "#define LINK_ASIO_NAMESPACE link_asio_[0-9_]+")
      if(line MATCHES "(link_asio_[0-9_]+)")
        set_property(TARGET ${target} APPEND PROPERTY
          INTERFACE_COMPILE_DEFINITIONS TACTUS_LINK_ASIO_NAMESPACE=${CMAKE_MATCH_1})
      endif()
      return()
    endif()
  endforeach()
endfunction()
