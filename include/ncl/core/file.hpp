// Whole-file reads and crash-safe writes: a file is written to a temporary name next to it
// and renamed into place, so a reader never sees a half-written file.
#pragma once

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <unistd.h>

#include "ncl/core/error.hpp"

namespace ncl {

/// Writes `bytes` to `path` atomically. Throws io_error naming the path on any failure and
/// leaves no temporary file behind.
inline void write_file_atomic(const std::filesystem::path& path, std::string_view bytes) {
  // The process id keeps two writers of the same file from sharing a temporary name.
  const std::filesystem::path tmp =
      path.string() + ".tmp." + std::to_string(static_cast<long long>(::getpid()));
  auto fail = [&](const std::string& what) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw io_error(detail::concat(path.string(), ": ", what));
  };
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail("cannot open " + tmp.string() + " for writing");
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) fail("write to " + tmp.string() + " failed");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) fail("cannot rename " + tmp.string() + " into place: " + ec.message());
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
