// The top level of every example binary. guarded_main runs its body and turns every error into
// "NAME: error: ..." on stderr and a documented exit status, never std::terminate:
//   2  usage and input errors: bad flags, unreadable or malformed files, data, checkpoints,
//      an --out that cannot be created (ncl::error, std::filesystem::filesystem_error, a
//      JSON library error)
//   1  training stopped on a NaN or Inf (ncl::train::nonfinite_error), out of memory, standard
//      output that could not be written (a full disk), or anything else
// Files are written with ncl::write_file_atomic, so a failure never leaves half a file.
//
//   int main(int argc, char** argv) {
//     return example::guarded_main("ncl-x", [&] { return run(argc, argv); });
//   }
// make_out_dir creates --out before any work, so a bad --out fails at once.
#pragma once

#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <new>
#include <string>
#include <system_error>

#include <nlohmann/json.hpp>

#include <ncl/core/error.hpp>
#include <ncl/train/adamw.hpp>

namespace example {

/// Creates `dir` (and its parents); an io_error naming it when that fails.
inline void make_out_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir)) {
    throw ncl::io_error(ncl::detail::concat(dir.string(), ": cannot create the output directory",
                                            ec ? " (" + ec.message() + ")" : std::string()));
  }
}

inline int guarded_main(const char* name, const std::function<int()>& body) {
  const auto fail = [name](const char* what, int status) {
    std::fflush(stdout);  // what the run printed comes before the error
    std::fprintf(stderr, "%s: error: %s\n", name, what);
    return status;
  };
  try {
    const int status = body();
    // Output that never arrived is a failure, not a success (`ncl-run ... > /dev/full`).
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) return fail("cannot write standard output", 1);
    return status;
  } catch (const ncl::train::nonfinite_error& e) {
    return fail(e.what(), 1);
  } catch (const ncl::error& e) {
    return fail(e.what(), 2);
  } catch (const std::filesystem::filesystem_error& e) {
    return fail(e.what(), 2);
  } catch (const nlohmann::json::exception& e) {
    return fail(e.what(), 2);
  } catch (const std::bad_alloc&) {
    return fail("out of memory", 1);
  } catch (const std::exception& e) {
    return fail(e.what(), 1);
  } catch (...) {
    return fail("unknown error", 1);
  }
}

}  // namespace example
