// ncl-inspect FILE [--json]: lists every tensor of a safetensors file (name, dtype, shape) and
// its metadata. Exit status (example_main.hpp): 0 on a valid file; 2 with a message on stderr
// on an invalid, missing or unreadable one (or a bad command line); 1 when memory runs out or
// the listing cannot be written.
#include <cstdio>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "ncl/io/safetensors.hpp"

#include "../common/example_main.hpp"

namespace {

int usage(std::ostream& out, int status) {
  out << "usage: ncl-inspect [--json] FILE\n"
         "  prints every tensor's name, dtype and shape (one JSON object with --json)\n"
         "  exit status: 0 valid, 2 bad command line or invalid, missing or unreadable FILE, 1 otherwise\n";
  return status;
}

int run(int argc, char** argv) {
  bool json = false;
  std::string path;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--json") {
      json = true;
    } else if (arg == "-h" || arg == "--help") {
      return usage(std::cout, 0);
    } else if (!arg.empty() && arg[0] == '-') {
      std::cerr << "ncl-inspect: error: unknown option '" << arg << "'\n";
      return usage(std::cerr, 2);
    } else if (path.empty()) {
      path = arg;
    } else {
      std::cerr << "ncl-inspect: error: more than one FILE given\n";
      return usage(std::cerr, 2);
    }
  }
  if (path.empty()) {
    std::cerr << "ncl-inspect: error: no FILE given\n";
    return usage(std::cerr, 2);
  }
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
      std::cout << t.name << "  " << ncl::io::dtype_name(t.type) << "  " << ncl::io::shape_string(t.shape) << "\n";
      elements += t.elements();
    }
    std::cout << file.tensors().size() << " tensors, " << elements << " elements";
    for (const auto& [k, v] : file.metadata()) std::cout << "\n" << k << " = " << v;
    std::cout << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return example::guarded_main("ncl-inspect", [&] { return run(argc, argv); });
}
