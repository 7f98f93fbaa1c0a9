// ncl: differentiable computers and neurally compiled libraries. This facade only includes.
#pragma once

#include "ncl/core/error.hpp"
#include "ncl/core/gradcheck.hpp"
#include "ncl/core/rng.hpp"
#include "ncl/core/softmax.hpp"
#include "ncl/core/tensor.hpp"
#include "ncl/core/version.hpp"
#include "ncl/encoding/binary.hpp"
#include "ncl/encoding/one_hot.hpp"
