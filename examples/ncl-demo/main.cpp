// ncl-demo: number encodings, shown. Encodes a few integers one-hot and in binary, converts
// each way exactly, then shows what the conversions do to soft (uncertain) numbers.
//
// Takes no arguments. Exit status: 0, 2 on any argument but --help, 1 on an internal error.
#include <cstdio>
#include <string_view>
#include <vector>

#include <ncl/ncl.hpp>

#include "../common/example_main.hpp"

using ncl::matrix;
namespace enc = ncl::encoding;

namespace {

void print_distribution(const char* label, const matrix<double>& p, ncl::index row) {
  std::printf("  %-28s", label);
  for (ncl::index v = 0; v < p.cols(); ++v) std::printf(" %4.2f", p(row, v));
  std::printf("\n");
}

constexpr const char* usage = "usage: ncl-demo\n  shows ncl's number encodings; takes no arguments\n";

int run(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage, stdout);
      return 0;
    }
    std::fprintf(stderr, "ncl-demo: error: unexpected argument '%s'\n%s", argv[i], usage);
    return 2;
  }
  const std::int64_t n = 16;
  const int bits = enc::bits_for(n);
  const std::vector<std::int64_t> values{0, 5, 11, 15};
  std::printf("ncl %s: number encodings, value range n = %lld (%d bits)\n\n", NCL_VERSION_STRING,
              static_cast<long long>(n), bits);

  matrix<double> one_hot, bit_probs, back_to_one_hot, back_to_bits;
  enc::one_hot_encode(one_hot, values, n);
  enc::one_hot_to_binary_forward(back_to_bits, one_hot, bits);
  enc::binary_encode(bit_probs, values, bits);
  enc::binary_to_one_hot_forward(back_to_one_hot, bit_probs, n);
  std::printf("exact round trips (one-hot -> binary -> one-hot):\n");
  for (std::size_t b = 0; b < values.size(); ++b) {
    const auto i = static_cast<ncl::index>(b);
    std::printf("  %2lld  bits", static_cast<long long>(values[b]));
    for (int k = 0; k < bits; ++k) std::printf(" %g", back_to_bits(i, k));
    std::printf("  (little-endian)  one-hot argmax %lld\n",
                static_cast<long long>(enc::one_hot_decode(back_to_one_hot).values[b]));
  }

  std::printf("\na soft number: bits 0.9, 0.2, 0.5, 0.0 (little-endian)\n");
  matrix<double> soft_bits(1, bits);
  soft_bits << 0.9, 0.2, 0.5, 0.0;
  matrix<double> soft_one_hot;
  enc::binary_to_one_hot_forward(soft_one_hot, soft_bits, n);
  print_distribution("p(v), v = 0..15:", soft_one_hot, 0);
  const auto decoded = enc::one_hot_decode(soft_one_hot);
  matrix<double> mean;
  enc::expected_value_forward(mean, soft_one_hot);
  std::printf("  most likely value %lld with probability %.3f; expected value %.3f\n",
              static_cast<long long>(decoded.values[0]), decoded.confidence[0], mean(0, 0));
  matrix<double> again;
  enc::one_hot_to_binary_forward(again, soft_one_hot, bits);
  std::printf("  and back to bits:");
  for (int k = 0; k < bits; ++k) std::printf(" %.2f", again(0, k));
  std::printf("  (the marginals are recovered exactly)\n");

  std::printf("\nbad input is an error, not a crash:\n");
  try {
    matrix<double> out;
    enc::binary_to_one_hot_forward(out, soft_bits, 10);
  } catch (const ncl::error& e) {
    std::printf("  %s\n", e.what());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return example::guarded_main("ncl-demo", [&] { return run(argc, argv); });
}
