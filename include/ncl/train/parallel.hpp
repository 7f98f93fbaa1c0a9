// NCL_OMP(directive): an OpenMP pragma that vanishes when ncl is built without OpenMP (so
// -Wunknown-pragmas stays quiet). Used by the training core and the transformer's layers:
//   NCL_OMP(omp parallel for schedule(static) if (n > 4096))
#pragma once

#include "ncl/core/parallel.hpp"

#if defined(_OPENMP)
#define NCL_OMP(directive) _Pragma(#directive)
#else
#define NCL_OMP(directive)
#endif

namespace ncl::train::detail {

/// Element-wise loops over fewer entries than this run on one thread: below it a parallel
/// region's start-up costs more than it saves.
inline constexpr long parallel_threshold = 32768;

}  // namespace ncl::train::detail
