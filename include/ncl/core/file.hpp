// Whole-file reads and crash-safe writes: a file is written to a temporary name next to it
// and renamed into place, so a reader never sees a half-written file.
#pragma once

#include <atomic>
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

/// The whole file at `path`. Throws io_error naming the path if it cannot be read.
inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw io_error(detail::concat(path.string(), ": cannot open for reading"));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw io_error(detail::concat(path.string(), ": read error"));
  return text.str();
}

}  // namespace ncl
