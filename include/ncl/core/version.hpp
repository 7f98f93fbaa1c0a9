// ncl's version, kept equal to the CMake project version (a test checks).
#pragma once

#define NCL_VERSION_MAJOR 0
#define NCL_VERSION_MINOR 1
#define NCL_VERSION_PATCH 0
#define NCL_VERSION_STRING "0.1.0"
