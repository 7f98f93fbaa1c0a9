// Shared by the tests that run built binaries (ncl-run, ncl-arith, the learning examples):
// run a shell command, capture its exit status, stdout and stderr.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <catch2/catch.hpp>

namespace ncl_test {

struct cli_result {
  int status = -1;  ///< the exit status; -1 when the process died of a signal
  std::string out, err;
};

/// Runs `command` through the shell (its arguments must need no quoting), stdout read from a
/// pipe and stderr through a scratch file of its own per call and process (CTest runs test
/// cases in parallel).
inline cli_result run_command(const std::string& command) {
  static int calls = 0;
  const auto err_path = std::filesystem::temp_directory_path() /
                        ("ncl_test." + std::to_string(::getpid()) + "." + std::to_string(++calls) + ".err");
  cli_result r;
  std::FILE* pipe = popen((command + " 2>" + err_path.string()).c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  std::size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) r.out.append(buffer, got);
  const int raw = pclose(pipe);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  std::ifstream err(err_path);
  r.err.assign(std::istreambuf_iterator<char>(err), std::istreambuf_iterator<char>());
  std::filesystem::remove(err_path);
  return r;
}

}  // namespace ncl_test
