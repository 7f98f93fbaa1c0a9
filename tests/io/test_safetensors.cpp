// The safetensors reader and writer: round trips, dtype conversions, and every kind of invalid
// file rejected with a clear io_error, including thousands of random mutations.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "ncl/core/rng.hpp"
#include "ncl/io/safetensors.hpp"

namespace fs = std::filesystem;
using ncl::io::safetensors;
using bytes = std::vector<unsigned char>;

namespace {

// A file from a header text and a data section.
bytes make_file(const std::string& header, const bytes& data) {
  bytes out(8 + header.size() + data.size());
  std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<unsigned char>((n >> (8 * i)) & 0xff);
  std::copy(header.begin(), header.end(), out.begin() + 8);
  std::copy(data.begin(), data.end(), out.begin() + 8 + static_cast<std::ptrdiff_t>(header.size()));
  return out;
}

bytes zeros(std::size_t n) { return bytes(n, 0); }

// Parsing must fail with an io_error whose message contains `expected`.
void require_rejected(const bytes& file, const std::string& expected) {
  INFO("expected: " << expected);
  try {
    safetensors::parse(file, "bad.safetensors");
    FAIL("accepted an invalid file");
  } catch (const ncl::io_error& e) {
    const std::string what = e.what();
    INFO(what);
    CHECK(what.find("bad.safetensors") != std::string::npos);
    CHECK(what.find(expected) != std::string::npos);
  }
}

bytes read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return bytes(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("safetensors: write then read F32, F64 and I64 with metadata", "[io][safetensors]") {
  const std::vector<float> a{1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -1e-3f};
  const std::vector<double> b{std::acos(-1.0), -0.5};
  const std::vector<std::int64_t> c{-3, 1LL << 40, 7};
  const fs::path path = fs::temp_directory_path() / "ncl_test_roundtrip.safetensors";
  const std::vector<ncl::io::tensor_view> views{
      ncl::io::make_view<float>("model.a", {2, 3}, a), ncl::io::make_view<double>("b", {2}, b),
      ncl::io::make_view<std::int64_t>("c", {3}, c)};
  ncl::io::write_safetensors(path.string(), views, {{"step", "12"}});
  for (const auto& entry : fs::directory_iterator(path.parent_path())) {  // no temporary left
    CHECK(entry.path().filename().string().rfind("ncl_test_roundtrip.safetensors.tmp", 0) != 0);
  }
  const bytes raw = read_bytes(path);
  std::uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | raw[static_cast<std::size_t>(i)];
  CHECK(header_len % 8 == 0);  // data 8-byte aligned
  CHECK(raw.size() == 8 + header_len + 6 * 4 + 2 * 8 + 3 * 8);

  const auto f = safetensors::load(path.string());
  REQUIRE(f.tensors().size() == 3);
  CHECK(f.metadata().at("step") == "12");
  CHECK(f.at("model.a").type == ncl::io::dtype::F32);
  CHECK(f.at("model.a").shape == std::vector<std::int64_t>{2, 3});
  CHECK(f.read<float>("model.a") == a);
  CHECK(f.read<double>("b") == b);
  CHECK(f.read_integers("c") == c);
  const auto as_double = f.read<double>("model.a");
  CHECK(as_double[5] == static_cast<double>(a[5]));
  std::vector<float> out(6);
  const std::vector<std::int64_t> wrong{3, 2};
  CHECK_THROWS_WITH(f.read_into<float>("model.a", out, wrong),
                    Catch::Contains("'model.a' has shape [2, 3], expected [3, 2]"));
  std::vector<float> small(5);
  CHECK_THROWS_WITH(f.read_into<float>("model.a", small), Catch::Contains("destination holds 5"));
  CHECK_THROWS_WITH(f.read<float>("c"), Catch::Contains("expected a float dtype"));
  CHECK_THROWS_WITH(f.read_integers("b"), Catch::Contains("expected an integer dtype"));
  CHECK_THROWS_WITH(f.at("nope"), Catch::Contains("no tensor named 'nope'"));
  fs::remove(path);

  CHECK_THROWS_AS(ncl::io::make_view<float>("x", {4}, a), ncl::shape_error);
  CHECK_THROWS_AS(ncl::io::write_safetensors("/nonexistent-dir/x.safetensors", views), ncl::io_error);
  CHECK_THROWS_AS(safetensors::load("/nonexistent-dir/x.safetensors"), ncl::io_error);
}

TEST_CASE("safetensors: F16 and BF16 read by conversion", "[io][safetensors]") {
  // 1, -2, 65504 (largest half), 2^-24 (smallest subnormal), 2^-15 (a subnormal), inf, NaN
  const std::vector<std::uint16_t> half{0x3c00, 0xc000, 0x7bff, 0x0001, 0x0200, 0x7c00, 0x7e00};
  // 1, -2, 3.140625, 1e-40-ish subnormal pattern, -inf
  const std::vector<std::uint16_t> bf16{0x3f80, 0xc000, 0x4049, 0x0001, 0xff80};
  bytes data;
  for (auto h : half) { data.push_back(h & 0xff); data.push_back(h >> 8); }
  for (auto h : bf16) { data.push_back(h & 0xff); data.push_back(h >> 8); }
  const auto f = safetensors::parse(
      make_file(R"({"h":{"dtype":"F16","shape":[7],"data_offsets":[0,14]},)"
                R"("b":{"dtype":"BF16","shape":[5],"data_offsets":[14,24]}})", data), "conv");
  const auto h = f.read<double>("h");
  CHECK(h[0] == 1.0);
  CHECK(h[1] == -2.0);
  CHECK(h[2] == 65504.0);
  CHECK(h[3] == std::ldexp(1.0, -24));
  CHECK(h[4] == std::ldexp(1.0, -15));
  CHECK(std::isinf(h[5]));
  CHECK(std::isnan(h[6]));
  const auto b = f.read<float>("b");
  CHECK(b[0] == 1.0f);
  CHECK(b[1] == -2.0f);
  CHECK(b[2] == 3.140625f);
  CHECK(b[3] == std::bit_cast<float>(std::uint32_t{0x00010000}));
  CHECK(b[4] == -std::numeric_limits<float>::infinity());
}

TEST_CASE("safetensors: invalid files are rejected with a clear error", "[io][safetensors][invalid]") {
  const std::string one = R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  CHECK_NOTHROW(safetensors::parse(make_file(one, zeros(8)), "ok"));
  CHECK_NOTHROW(safetensors::parse(make_file("{}", {}), "empty"));

  require_rejected(bytes{1, 0, 0}, "shorter than the 8-byte header length");
  require_rejected(bytes{}, "shorter than the 8-byte header length");
  {  // header length beyond the file, including one that would overflow 8 + N
    bytes f = make_file(one, zeros(8));
    f[0] = 0xff;
    f[1] = 0xff;
    require_rejected(f, "runs past the end of the file");
    for (int i = 0; i < 8; ++i) f[static_cast<std::size_t>(i)] = 0xff;
    require_rejected(f, "runs past the end of the file");
  }
  require_rejected(make_file(one, zeros(4)), "run past the data section");  // truncated data
  require_rejected(make_file(one, zeros(12)), "cover 8 bytes of a 12-byte data section");
  require_rejected(make_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("u":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", zeros(8)),
                   "overlap tensor");
  require_rejected(make_file(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", zeros(8)),
                   "leaving a hole");
  require_rejected(make_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", zeros(8)),
                   "end before they begin");
  require_rejected(make_file(R"({"t":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", zeros(8)),
                   "unknown dtype 'Q4'");
  require_rejected(make_file(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", zeros(8)),
                   "needs 12 bytes");
  require_rejected(make_file(R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", zeros(8)),
                   "not a non-negative integer");
  require_rejected(make_file(R"({"t":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", zeros(8)),
                   "not a non-negative integer");
  require_rejected(make_file(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}})", zeros(8)),
                   "is too large");
  require_rejected(make_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", zeros(8)),
                   "data_offsets is not [begin, end]");
  require_rejected(make_file(R"({"t":{"shape":[2],"data_offsets":[0,8]}})", zeros(8)), "no string dtype");
  require_rejected(make_file(R"({"t":{"dtype":"F32","data_offsets":[0,8]}})", zeros(8)), "no shape array");
  require_rejected(make_file(R"({"t":[1,2]})", zeros(8)), "is not an object");
  require_rejected(make_file(R"({"__metadata__":{"a":1}})", {}), "is not a string");
  require_rejected(make_file(R"({"t":)", {}), "not valid JSON");
  require_rejected(make_file(R"([1,2,3])", {}), "does not start with '{'");
  std::string deep = "{";
  deep.append(100000, '[');
  deep.append(100000, ']');
  deep += "}";
  require_rejected(make_file(deep, {}), "nests deeper");
}

TEST_CASE("safetensors: thousands of random and mutated files never crash the parser", "[io][safetensors][fuzz]") {
  const std::string header =
      R"({"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
      R"("b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]},"c":{"dtype":"I64","shape":[1],"data_offsets":[22,30]}})";
  const bytes valid = make_file(header, bytes(30, 0x3f));
  REQUIRE_NOTHROW(safetensors::parse(valid, "valid"));
  ncl::rng r(99);
  std::size_t accepted = 0, rejected = 0;
  for (int iteration = 0; iteration < 4000; ++iteration) {
    bytes f = valid;
    const int kind = static_cast<int>(r.integer(0, 5));
    const int edits = static_cast<int>(r.integer(1, 4));
    for (int e = 0; e < edits; ++e) {
      const auto at = static_cast<std::size_t>(r.integer(0, static_cast<std::int64_t>(f.size())));
      if (kind == 0) {  // random byte anywhere, the length field included
        f[at] = static_cast<unsigned char>(r.integer(0, 256));
      } else if (kind == 1) {  // a digit or JSON punctuation inside the header
        const char pool[] = "0123456789[]{},:\"-.eE ";
        f[at] = static_cast<unsigned char>(pool[r.integer(0, sizeof pool - 1)]);
      } else if (kind == 2) {  // truncate
        f.resize(at);
      } else if (kind == 3) {  // random length field
        f[static_cast<std::size_t>(r.integer(0, 8))] = static_cast<unsigned char>(r.integer(0, 256));
      } else {  // entirely random bytes
        f.assign(static_cast<std::size_t>(r.integer(0, 64)), 0);
        for (auto& byte : f) byte = static_cast<unsigned char>(r.integer(0, 256));
      }
      if (f.empty()) break;
    }
    try {
      const auto file = safetensors::parse(f, "mutant");
      ++accepted;
      for (const auto& t : file.tensors()) {
        CHECK(file.raw(t).size() == t.end - t.begin);
        try {
          (void)file.read<double>(t.name);
        } catch (const ncl::io_error&) {
        }
        try {
          (void)file.read_integers(t.name);
        } catch (const ncl::io_error&) {
        }
      }
    } catch (const ncl::io_error&) {
      ++rejected;
    }
  }
  CHECK(accepted > 0);
  CHECK(rejected > 1000);
}

TEST_CASE("safetensors: a directory given as the file is refused by name (was out of memory)", "[io][safetensors][invalid]") {
  const auto dir = std::filesystem::temp_directory_path() / ("ncl_test_safetensors_dir." + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  try {
    safetensors::load(dir.string());
    FAIL("a directory was loaded");
  } catch (const ncl::io_error& e) {
    CHECK_THAT(e.what(), Catch::Contains(dir.string() + ": is a directory, not a safetensors file"));
  }
  std::filesystem::remove_all(dir);
}
