// ncl-inspect FILE [--json]: lists every tensor of a safetensors file (name, dtype, shape) and
// its metadata. Exits 0 on a valid file, 2 with a message on stderr on an invalid or missing
// one (or a bad command line).
#include <cstdio>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "ncl/io/safetensors.hpp"

namespace {

int usage() {
  std::cerr << "usage: ncl-inspect [--json] FILE\n"
               "  prints every tensor's name, dtype and shape (one JSON object with --json)\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  bool json = false;
  std::string path;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--json") {
      json = true;
    } else if (arg == "-h" || arg == "--help") {
      usage();
      return 0;
    } else if (!arg.empty() && arg[0] == '-') {
      std::cerr << "ncl-inspect: unknown option '" << arg << "'\n";
      return usage();
    } else if (path.empty()) {
      path = arg;
    } else {
      std::cerr << "ncl-inspect: more than one FILE given\n";
      return usage();
    }
  }
  if (path.empty()) return usage();
  try {
    const auto file = ncl::io::safetensors::load(path);
    if (json) {
      nlohmann::json out;
      out["file"] = path;
      out["metadata"] = file.metadata();
      out["tensors"] = nlohmann::json::array();
      for (const auto& t : file.tensors()) {
        out["tensors"].push_back({{"name", t.name}, {"dtype", ncl::io::dtype_name(t.type)}, {"shape", t.shape}});
      }
      std::cout << out.dump() << "\n";
    } else {
      std::size_t elements = 0;
      for (const auto& t : file.tensors()) {
        std::cout << t.name << "  " << ncl::io::dtype_name(t.type) << "  "
                  << ncl::io::shape_string(t.shape) << "\n";
        elements += t.elements();
      }
      std::cout << file.tensors().size() << " tensors, " << elements << " elements";
      for (const auto& [k, v] : file.metadata()) std::cout << "\n" << k << " = " << v;
      std::cout << "\n";
    }
  } catch (const ncl::error& e) {
    std::cerr << "ncl-inspect: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {  // e.g. bad_alloc on a huge but valid file
    std::cerr << "ncl-inspect: " << path << ": " << e.what() << "\n";
    return 2;
  }
  return 0;
}
