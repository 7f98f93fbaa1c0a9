// The safetensors format (Hugging Face): an 8-byte little-endian header length N, N bytes of
// JSON mapping each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
// into the data section that follows; an optional "__metadata__" maps strings to strings),
// then the raw little-endian tensor data.
//
// The reader validates everything before touching data: a file shorter than 8 bytes, a header
// length beyond the file, a header that is not a JSON object, an unknown dtype, a shape whose
// size disagrees with its byte range, offsets out of range, overlapping or leaving holes (as
// the reference implementation requires) are all rejected with an io_error naming the file and
// the tensor. No byte outside the file is ever read.
//
// Reads F64, F32, F16 and BF16 into float or double, integer dtypes into int64. Writes any
// dtype from raw little-endian bytes, to a temporary file renamed into place.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ncl/core/error.hpp"
#include "ncl/core/file.hpp"

namespace ncl::io {

static_assert(std::endian::native == std::endian::little,
              "ncl::io::safetensors assumes a little-endian host");

enum class dtype { BOOL, U8, I8, U16, I16, F16, BF16, U32, I32, F32, U64, I64, F64 };

inline constexpr std::string_view dtype_names[] = {"BOOL", "U8",  "I8",  "U16", "I16",
                                                   "F16",  "BF16", "U32", "I32", "F32",
                                                   "U64",  "I64", "F64"};
static_assert(std::size(dtype_names) == static_cast<std::size_t>(dtype::F64) + 1);

inline std::string_view dtype_name(dtype t) { return dtype_names[static_cast<std::size_t>(t)]; }

inline std::size_t dtype_size(dtype t) {
  switch (t) {
    case dtype::BOOL: case dtype::U8: case dtype::I8: return 1;
    case dtype::U16: case dtype::I16: case dtype::F16: case dtype::BF16: return 2;
    case dtype::U32: case dtype::I32: case dtype::F32: return 4;
    case dtype::U64: case dtype::I64: case dtype::F64: return 8;
  }
  return 0;
}

inline bool parse_dtype(std::string_view name, dtype& out) {
  for (std::size_t i = 0; i < std::size(dtype_names); ++i) {
    if (dtype_names[i] == name) {
      out = static_cast<dtype>(i);
      return true;
    }
  }
  return false;
}

/// The scalar type's safetensors dtype (float -> F32, double -> F64, int64 -> I64, ...).
template <class T>
constexpr dtype dtype_of() {
  if constexpr (std::is_same_v<T, float>) return dtype::F32;
  else if constexpr (std::is_same_v<T, double>) return dtype::F64;
  else if constexpr (std::is_same_v<T, std::int64_t>) return dtype::I64;
  else if constexpr (std::is_same_v<T, std::int32_t>) return dtype::I32;
  else if constexpr (std::is_same_v<T, std::uint8_t>) return dtype::U8;
  else static_assert(sizeof(T) == 0, "no safetensors dtype for this type");
}

/// IEEE binary16 -> float, subnormals, infinities and NaN included.
inline float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1fu;
  std::uint32_t mantissa = h & 0x3ffu;
  std::uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {  // subnormal: normalise
    std::uint32_t e = 113;
    while (!(mantissa & 0x400u)) {
      mantissa <<= 1;
      --e;
    }
    bits = sign | (e << 23) | ((mantissa & 0x3ffu) << 13);
  }
  return std::bit_cast<float>(bits);
}

/// bfloat16 -> float: the high 16 bits of a float.
inline float bfloat16_to_float(std::uint16_t b) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}

struct tensor_entry {
  std::string name;
  dtype type = dtype::F32;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0;  ///< byte offsets into the data section
  std::uint64_t end = 0;
  std::uint64_t elements() const {
    std::uint64_t n = 1;
    for (auto d : shape) n *= static_cast<std::uint64_t>(d);
    return n;
  }
};

inline std::string shape_string(std::span<const std::int64_t> shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

namespace detail {

// Deepest bracket nesting of JSON text outside strings. A valid header nests 3 deep; a
// hostile one can nest millions deep, so the depth is checked before parsing.
inline std::size_t json_depth(std::string_view text) {
  std::size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char ch : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (ch == '\\') escaped = true;
      else if (ch == '"') in_string = false;
    } else if (ch == '"') {
      in_string = true;
    } else if (ch == '{' || ch == '[') {
      deepest = std::max(deepest, ++depth);
    } else if ((ch == '}' || ch == ']') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

inline std::uint64_t read_u64_le(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace detail

/// A parsed safetensors file held in memory.
class safetensors {
 public:
  /// Parses `bytes` (a whole file); `source` names it in error messages.
  static safetensors parse(std::vector<unsigned char> bytes, std::string source) {
    safetensors f;
    f.source_ = std::move(source);
    f.bytes_ = std::move(bytes);
    f.parse_header();
    return f;
  }

  /// Reads and parses the file at `path`; a directory is refused by name (it opens as a stream
  /// whose end is at 2^63 - 1, which would be buffered).
  static safetensors load(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
      throw io_error(ncl::detail::concat(path, ": is a directory, not a safetensors file"));
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) throw io_error(ncl::detail::concat(path, ": cannot open for reading"));
    in.seekg(0, std::ios::end);
    const std::streamoff size = in.tellg();
    if (size < 0) throw io_error(ncl::detail::concat(path, ": cannot determine the file size"));
    in.seekg(0, std::ios::beg);
    std::vector<unsigned char> bytes(static_cast<std::size_t>(size));
    if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size)) {
      throw io_error(ncl::detail::concat(path, ": read failed"));
    }
    return parse(std::move(bytes), path);
  }

  const std::string& source() const { return source_; }
  /// Tensors in data-offset order.
  const std::vector<tensor_entry>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  const tensor_entry* find(std::string_view name) const {
    for (const auto& t : tensors_) {
      if (t.name == name) return &t;
    }
    return nullptr;
  }
  const tensor_entry& at(std::string_view name) const {
    if (const auto* t = find(name)) return *t;
    throw io_error(ncl::detail::concat(source_, ": no tensor named '", name, "'"));
  }

  /// The raw little-endian bytes of a tensor.
  std::span<const unsigned char> raw(const tensor_entry& t) const {
    return std::span<const unsigned char>(bytes_).subspan(data_start_ + t.begin, t.end - t.begin);
  }

  /// Reads a float tensor (F64, F32, F16 or BF16) converted to S into `out`, which must hold
  /// exactly its elements; if `expected_shape` is given the tensor's shape must equal it.
  template <class S>
  void read_into(std::string_view name, std::span<S> out,
                 std::span<const std::int64_t> expected_shape = {}) const {
    static_assert(std::is_floating_point_v<S>);
    const tensor_entry& t = at(name);
    check_target(t, out.size(), expected_shape);
    const unsigned char* p = raw(t).data();
    const std::size_t n = out.size();
    switch (t.type) {
      case dtype::F64: for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<S>(load<double>(p, i)); break;
      case dtype::F32: for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<S>(load<float>(p, i)); break;
      case dtype::F16: for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<S>(half_to_float(load<std::uint16_t>(p, i))); break;
      case dtype::BF16: for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<S>(bfloat16_to_float(load<std::uint16_t>(p, i))); break;
      default:
        throw io_error(ncl::detail::concat(source_, ": tensor '", t.name, "' has dtype ",
                                           dtype_name(t.type), ", expected a float dtype (F64, F32, F16, BF16)"));
    }
  }

  template <class S>
  std::vector<S> read(std::string_view name) const {
    std::vector<S> out(at(name).elements());
    read_into<S>(name, out);
    return out;
  }

  /// Reads an integer tensor (I8..I64, U8..U32, BOOL) as int64; U64 values above INT64_MAX
  /// are rejected.
  std::vector<std::int64_t> read_integers(std::string_view name) const {
    const tensor_entry& t = at(name);
    const std::size_t n = t.elements();
    const unsigned char* p = raw(t).data();
    std::vector<std::int64_t> out(n);
    for (std::size_t i = 0; i < n; ++i) {
      switch (t.type) {
        case dtype::BOOL: case dtype::U8: out[i] = load<std::uint8_t>(p, i); break;
        case dtype::I8: out[i] = load<std::int8_t>(p, i); break;
        case dtype::U16: out[i] = load<std::uint16_t>(p, i); break;
        case dtype::I16: out[i] = load<std::int16_t>(p, i); break;
        case dtype::U32: out[i] = load<std::uint32_t>(p, i); break;
        case dtype::I32: out[i] = load<std::int32_t>(p, i); break;
        case dtype::I64: out[i] = load<std::int64_t>(p, i); break;
        case dtype::U64: {
          const auto u = load<std::uint64_t>(p, i);
          if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            throw io_error(ncl::detail::concat(source_, ": tensor '", t.name, "' entry ", i,
                                               " = ", u, " does not fit int64"));
          }
          out[i] = static_cast<std::int64_t>(u);
          break;
        }
        default:
          throw io_error(ncl::detail::concat(source_, ": tensor '", t.name, "' has dtype ",
                                             dtype_name(t.type), ", expected an integer dtype"));
      }
    }
    return out;
  }

 private:
  template <class T>
  static T load(const unsigned char* p, std::size_t i) {
    T v;
    std::memcpy(&v, p + i * sizeof(T), sizeof(T));  // data may be unaligned
    return v;
  }

  [[noreturn]] void fail(const std::string& message) const {
    throw io_error(ncl::detail::concat(source_, ": invalid safetensors file: ", message));
  }

  void check_target(const tensor_entry& t, std::size_t size,
                    std::span<const std::int64_t> expected_shape) const {
    if (!expected_shape.empty() &&
        !std::equal(t.shape.begin(), t.shape.end(), expected_shape.begin(), expected_shape.end())) {
      throw io_error(ncl::detail::concat(source_, ": tensor '", t.name, "' has shape ",
                                         shape_string(t.shape), ", expected ",
                                         shape_string(expected_shape)));
    }
    if (t.elements() != size) {
      throw io_error(ncl::detail::concat(source_, ": tensor '", t.name, "' has ", t.elements(),
                                         " elements ", shape_string(t.shape),
                                         ", the destination holds ", size));
    }
  }

  void parse_header() {
    const std::uint64_t size = bytes_.size();
    if (size < 8) fail(ncl::detail::concat("file is ", size, " bytes, shorter than the 8-byte header length"));
    const std::uint64_t header_len = detail::read_u64_le(bytes_.data());
    if (header_len > size - 8) {
      fail(ncl::detail::concat("header length ", header_len, " runs past the end of the file (",
                               size - 8, " bytes after the length)"));
    }
    if (header_len < 2) fail(ncl::detail::concat("header length ", header_len, " is too short for a JSON object"));
    data_start_ = 8 + header_len;
    const std::uint64_t data_size = size - data_start_;
    const std::string_view text(reinterpret_cast<const char*>(bytes_.data() + 8), header_len);
    if (text.front() != '{') fail("header does not start with '{'");
    if (detail::json_depth(text) > 8) fail("header JSON nests deeper than 8 levels");
    nlohmann::json header;
    try {
      header = nlohmann::json::parse(text.begin(), text.end());
    } catch (const nlohmann::json::exception& e) {
      fail(ncl::detail::concat("header is not valid JSON: ", e.what()));
    }
    if (!header.is_object()) fail("header is not a JSON object");

    for (const auto& [name, value] : header.items()) {
      if (name == "__metadata__") {
        if (!value.is_object()) fail("__metadata__ is not an object");
        for (const auto& [key, v] : value.items()) {
          if (!v.is_string()) fail(ncl::detail::concat("__metadata__ value of '", key, "' is not a string"));
          metadata_[key] = v.get<std::string>();
        }
        continue;
      }
      tensors_.push_back(parse_entry(name, value));
    }
    std::sort(tensors_.begin(), tensors_.end(),
              [](const tensor_entry& a, const tensor_entry& b) {
                return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
              });
    // The data section must be covered exactly: no overlaps, no holes, nothing past its end.
    std::uint64_t expected = 0;
    const tensor_entry* previous = nullptr;
    for (const auto& t : tensors_) {
      if (t.end > data_size) {
        fail(ncl::detail::concat("tensor '", t.name, "' data_offsets [", t.begin, ", ", t.end,
                                 "] run past the data section of ", data_size, " bytes"));
      }
      if (t.begin < expected) {
        fail(ncl::detail::concat("tensor '", t.name, "' data_offsets [", t.begin, ", ", t.end,
                                 "] overlap tensor '", previous->name, "' ending at ", expected));
      }
      if (t.begin > expected) {
        fail(ncl::detail::concat("tensor '", t.name, "' starts at ", t.begin,
                                 ", leaving a hole after byte ", expected));
      }
      expected = t.end;
      previous = &t;
    }
    if (expected != data_size) {
      fail(ncl::detail::concat("tensors cover ", expected, " bytes of a ", data_size,
                               "-byte data section"));
    }
  }

  tensor_entry parse_entry(const std::string& name, const nlohmann::json& value) const {
    if (!value.is_object()) fail(ncl::detail::concat("entry '", name, "' is not an object"));
    tensor_entry t;
    t.name = name;
    const auto dt = value.find("dtype");
    if (dt == value.end() || !dt->is_string()) fail(ncl::detail::concat("tensor '", name, "' has no string dtype"));
    if (!parse_dtype(dt->get_ref<const std::string&>(), t.type)) {
      fail(ncl::detail::concat("tensor '", name, "' has unknown dtype '",
                               dt->get_ref<const std::string&>(), "'"));
    }
    const auto shape = value.find("shape");
    if (shape == value.end() || !shape->is_array()) fail(ncl::detail::concat("tensor '", name, "' has no shape array"));
    std::uint64_t elements = 1;
    constexpr std::uint64_t limit = std::uint64_t{1} << 56;
    for (const auto& d : *shape) {
      if (!d.is_number_unsigned()) fail(ncl::detail::concat("tensor '", name, "' shape has an entry that is not a non-negative integer"));
      const auto n = d.get<std::uint64_t>();
      if (n > limit || (n > 0 && elements > limit / n)) {
        fail(ncl::detail::concat("tensor '", name, "' shape ", shape->dump(), " is too large"));
      }
      elements *= n;
      t.shape.push_back(static_cast<std::int64_t>(n));
    }
    const auto offsets = value.find("data_offsets");
    if (offsets == value.end() || !offsets->is_array() || offsets->size() != 2 ||
        !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
      fail(ncl::detail::concat("tensor '", name, "' data_offsets is not [begin, end] of non-negative integers"));
    }
    t.begin = (*offsets)[0].get<std::uint64_t>();
    t.end = (*offsets)[1].get<std::uint64_t>();
    if (t.end < t.begin) {
      fail(ncl::detail::concat("tensor '", name, "' data_offsets [", t.begin, ", ", t.end, "] end before they begin"));
    }
    if (t.end - t.begin != elements * dtype_size(t.type)) {
      fail(ncl::detail::concat("tensor '", name, "' of dtype ", dtype_name(t.type), " and shape ",
                               shape_string(t.shape), " needs ", elements * dtype_size(t.type),
                               " bytes, data_offsets [", t.begin, ", ", t.end, "] hold ",
                               t.end - t.begin));
    }
    return t;
  }

  std::string source_;
  std::vector<unsigned char> bytes_;
  std::uint64_t data_start_ = 0;
  std::vector<tensor_entry> tensors_;
  std::map<std::string, std::string> metadata_;
};

/// One tensor to write: `data` points at elements() values of `type`, little-endian.
struct tensor_view {
  std::string name;
  dtype type = dtype::F32;
  std::vector<std::int64_t> shape;
  const void* data = nullptr;
};

template <class T>
tensor_view make_view(std::string name, std::vector<std::int64_t> shape, std::span<const T> data) {
  std::uint64_t n = 1;
  for (auto d : shape) n *= static_cast<std::uint64_t>(d);
  if (n != data.size()) {
    throw shape_error(ncl::detail::concat("safetensors: tensor '", name, "' shape ",
                                          shape_string(shape), " has ", n, " elements, data has ",
                                          data.size()));
  }
  return tensor_view{std::move(name), dtype_of<T>(), std::move(shape), data.data()};
}

/// Writes `tensors` (and string metadata) to `path` through a temporary file renamed into
/// place, so a crash never leaves a half-written file under `path`.
inline void write_safetensors(const std::string& path, std::span<const tensor_view> tensors,
                              const std::map<std::string, std::string>& metadata = {}) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (const auto& t : tensors) {
    if (t.name == "__metadata__" || header.contains(t.name)) {
      throw value_error(ncl::detail::concat("write_safetensors: duplicate or reserved tensor name '", t.name, "'"));
    }
    std::uint64_t n = 1;
    for (auto d : t.shape) {
      if (d < 0) throw shape_error(ncl::detail::concat("write_safetensors: tensor '", t.name, "' has a negative dimension"));
      n *= static_cast<std::uint64_t>(d);
    }
    const std::uint64_t bytes = n * dtype_size(t.type);
    header[t.name] = {{"dtype", dtype_name(t.type)}, {"shape", t.shape},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // data section starts 8-byte aligned

  write_file_atomic(path, [&](std::ostream& out) {
    unsigned char length[8];
    std::uint64_t n = text.size();
    for (auto& byte : length) {
      byte = static_cast<unsigned char>(n & 0xff);
      n >>= 8;
    }
    out.write(reinterpret_cast<const char*>(length), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& t : tensors) {
      std::uint64_t count = 1;
      for (auto d : t.shape) count *= static_cast<std::uint64_t>(d);
      out.write(static_cast<const char*>(t.data),
                static_cast<std::streamsize>(count * dtype_size(t.type)));
    }
  });
}

}  // namespace ncl::io
