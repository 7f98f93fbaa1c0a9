// libFuzzer target for the safetensors reader: any byte string either parses (and then every
// tensor reads in bounds) or is rejected with ncl::io_error. Built with -DNCL_BUILD_FUZZERS=ON
// and clang; ASan and UBSan catch any out-of-bounds read.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ncl/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto file = ncl::io::safetensors::parse(std::vector<unsigned char>(data, data + size), "fuzz");
    for (const auto& t : file.tensors()) {
      const auto raw = file.raw(t);
      volatile unsigned char sink = 0;
      for (unsigned char byte : raw) sink = sink ^ byte;
      try {
        (void)file.read<double>(t.name);
      } catch (const ncl::io_error&) {  // integer dtypes are not floats
      }
      try {
        (void)file.read_integers(t.name);
      } catch (const ncl::io_error&) {  // float dtypes are not integers
      }
    }
  } catch (const ncl::io_error&) {
  }
  return 0;
}
