// Whole-file reads and crash-safe writes: a file is written to a temporary name next to it
// and renamed into place, so a reader never sees a half-written file.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <unistd.h>

#include "ncl/core/error.hpp"

namespace ncl {

/// Writes `path` atomically from a callback that streams the contents into `out` (large
/// files need no buffer of their own size). The temporary name next to `path` carries the
/// process id and a per-process counter, so two writers of the same file, in two processes
/// or two threads, never share it. Throws io_error naming the path on any failure (also when
/// the callback throws, which is rethrown) and leaves no temporary file behind.
inline void write_file_atomic(const std::filesystem::path& path,
                              const std::function<void(std::ostream& out)>& write) {
  static std::atomic<unsigned long long> counter{0};
  const std::filesystem::path tmp = path.string() + ".tmp." +
                                    std::to_string(static_cast<long long>(::getpid())) + "." +
                                    std::to_string(counter.fetch_add(1));
  auto remove_tmp = [&] {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
  };
  auto fail = [&](const std::string& what) {
    remove_tmp();
    throw io_error(detail::concat(path.string(), ": ", what));
  };
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail("cannot open " + tmp.string() + " for writing");
    try {
      write(out);
    } catch (...) {
      out.close();
      remove_tmp();
      throw;
    }
    out.flush();
    if (!out) {
      out.close();
      fail("write to " + tmp.string() + " failed");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) fail("cannot rename " + tmp.string() + " into place: " + ec.message());
}

/// Writes `bytes` to `path` atomically (see above).
inline void write_file_atomic(const std::filesystem::path& path, std::string_view bytes) {
  write_file_atomic(path, [&](std::ostream& out) {
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  });
}

/// The largest file read_file reads unless told otherwise: every input ncl reads (assembly,
/// program and tokenizer files, data files) is far smaller, and a larger one is refused before
/// it is buffered.
inline constexpr std::uintmax_t default_max_file_bytes = std::uintmax_t{1} << 30;  // 1 GiB

/// The whole file at `path`. Throws io_error naming the path if it cannot be opened or read,
/// is a directory, or holds more than `max_bytes` bytes (checked while reading, so a device or
/// pipe that never ends is refused too).
inline std::string read_file(const std::filesystem::path& path,
                             std::uintmax_t max_bytes = default_max_file_bytes) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw io_error(detail::concat(path.string(), ": is a directory, not a file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw io_error(detail::concat(path.string(), ": cannot open for reading"));
  std::string text;
  char chunk[1 << 16];
  while (in) {
    in.read(chunk, sizeof chunk);
    const auto got = static_cast<std::size_t>(in.gcount());
    if (text.size() + got > max_bytes) {
      throw io_error(detail::concat(path.string(), ": more than ", max_bytes,
                                    " bytes, larger than this file may be"));
    }
    text.append(chunk, got);
  }
  if (in.bad()) throw io_error(detail::concat(path.string(), ": read error"));
  return text;
}

}  // namespace ncl
