#include <catch2/catch.hpp>

#include "ncl/core/ndarray.hpp"

TEST_CASE("higher-rank tensors check their shapes with named errors", "[core][ndarray]") {
  ncl::tensor<float, 3> t = xt::zeros<float>({2, 3, 4});
  t(1, 2, 3) = 5.0f;
  CHECK(t(1, 2, 3) == 5.0f);
  CHECK_NOTHROW(ncl::check_shape("op", "t", t, std::array<std::size_t, 3>{2, 3, 4}));
  CHECK_THROWS_WITH(ncl::check_shape("op", "t", t, std::array<std::size_t, 3>{2, 4, 4}),
                    Catch::Contains("op: t has shape (2, 3, 4), expected (2, 4, 4)"));
  CHECK_THROWS_AS(ncl::check_shape("op", "t", t, std::array<std::size_t, 2>{2, 3}), ncl::shape_error);
  // A view over an existing buffer, without a copy (xt::adapt).
  std::vector<double> buffer(6, 1.0);
  auto view = xt::adapt(buffer, std::vector<std::size_t>{2, 3});
  view(1, 1) = 4.0;
  CHECK(buffer[4] == 4.0);
}
