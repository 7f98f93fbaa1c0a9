// Uses ncl the way a user would; exits non-zero if the library misbehaves.
#include <ncl/ncl.hpp>

#include <cstdio>

int main() {
  ncl::matrix<float> logits(1, 3);
  logits << 1.0f, 2.0f, 3.0f;
  ncl::matrix<float> probs(1, 3);
  ncl::softmax_forward(probs, logits);

  const std::vector<std::int64_t> values{5, 0, 7};
  ncl::matrix<float> bits(3, 3);
  ncl::encoding::binary_encode(bits, values, 3);
  ncl::matrix<float> one_hot(3, 8);
  ncl::encoding::binary_to_one_hot_forward(one_hot, bits, 8);
  const auto decoded = ncl::encoding::one_hot_decode(one_hot);
  const bool ok = probs(0, 2) > probs(0, 1) && decoded.values == values;
  std::printf("ncl %s consumer: %s\n", NCL_VERSION_STRING, ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
