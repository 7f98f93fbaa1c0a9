# Finds PCRE2's 8-bit library (Debian: libpcre2-dev) and defines the imported target
# ncl::pcre2. Used by ncl's own build and again by the installed package config, so the
# exported ncl::tokenizer target finds PCRE2 on the consumer's machine.
if(NOT TARGET ncl::pcre2)
  find_path(NCL_PCRE2_INCLUDE_DIR pcre2.h)
  find_library(NCL_PCRE2_LIBRARY NAMES pcre2-8)
  if(NCL_PCRE2_INCLUDE_DIR AND NCL_PCRE2_LIBRARY)
    add_library(ncl::pcre2 INTERFACE IMPORTED)
    set_target_properties(ncl::pcre2 PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${NCL_PCRE2_INCLUDE_DIR}"
      INTERFACE_LINK_LIBRARIES "${NCL_PCRE2_LIBRARY}"
      INTERFACE_COMPILE_DEFINITIONS "PCRE2_CODE_UNIT_WIDTH=8")
  else()
    message(STATUS "ncl: PCRE2 (libpcre2-dev) not found: the ncl::tokenizer target is not defined")
  endif()
endif()
