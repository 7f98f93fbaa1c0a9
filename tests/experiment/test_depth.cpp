// ncl-depth end to end: the exactly compiled fib on hard inputs keeps the answer with
// probability 1 at every depth under both control forms (the soft machine is the discrete one
// there), softened programs and inputs lose it as depth grows, the files are written, and bad
// flags exit 2 with the problem named.
#include <catch2/catch.hpp>

#ifdef NCL_HAVE_NCL_DEPTH

#include <unistd.h>

#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <ncl/core/file.hpp>

#include "../test_process.hpp"

namespace {

const std::string depth_binary = NCL_BINARY_DIR "/examples/ncl-depth/ncl-depth";

std::filesystem::path depth_scratch(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("ncl_test_depth." + std::to_string(::getpid()) + "." + name);
}

ncl_test::cli_result run_depth(const std::string& args) { return ncl_test::run_command(depth_binary + " " + args); }

}  // namespace

TEST_CASE("ncl-depth: the exact fib keeps the answer at every depth, soft programs and inputs lose it with depth",
          "[experiment][depth]") {
  const auto dir = depth_scratch("sweep");
  const auto r = run_depth("--depths 1,3,6 --sharpness exact,16 --softness 0,1e-3 --pairs 6 --out " + dir.string());
  INFO(r.err);
  REQUIRE(r.status == 0);
  for (const char* f : {"summary.json", "confidence.csv", "steps.csv", "confidence_by_depth.svg",
                        "confidence_by_softness.svg", "off_path_by_step.svg"}) {
    CHECK(std::filesystem::exists(dir / f));
  }
  // (control, sharpness, softness, depth) -> confidence, from confidence.csv
  std::map<std::tuple<std::string, std::string, std::string, int>, double> conf;
  std::istringstream csv(ncl::read_file(dir / "confidence.csv"));
  std::string line;
  std::getline(csv, line);
  CHECK(line == "control,sharpness,softness,depth,confidence,min_confidence,accuracy,growth_per_step");
  while (std::getline(csv, line)) {
    std::istringstream fields(line);
    std::string control, sharp, soft, depth, value;
    std::getline(fields, control, ',');
    std::getline(fields, sharp, ',');
    std::getline(fields, soft, ',');
    std::getline(fields, depth, ',');
    std::getline(fields, value, ',');
    conf[{control, sharp, soft, std::stoi(depth)}] = std::stod(value);
  }
  REQUIRE(conf.size() == 2 * 2 * 2 * 3);
  for (const char* control : {"per_line", "mean_field"}) {
    for (int d : {1, 3, 6}) {
      INFO(control << ", depth " << d);
      CHECK(conf[{control, "exact", "0", d}] == 1.0);  // the soft machine computes the discrete one exactly
      CHECK(conf[{control, "16", "0", d}] < 1.0);
      CHECK(conf[{control, "exact", "0.001", d}] < 1.0);
    }
    // Leaks grow with depth.
    CHECK(conf[{control, "16", "0", 6}] < conf[{control, "16", "0", 3}]);
    CHECK(conf[{control, "16", "0", 3}] < conf[{control, "16", "0", 1}]);
    CHECK(conf[{control, "exact", "0.001", 6}] < conf[{control, "exact", "0.001", 1}]);
  }
  // The paper's mean-field control loses more than per-line control at the same sharpness.
  CHECK(conf[{"mean_field", "16", "0", 3}] < conf[{"per_line", "16", "0", 3}]);
  const auto summary = nlohmann::json::parse(ncl::read_file(dir / "summary.json"));
  CHECK(summary["experiment"] == "depth");
  CHECK(summary["results"].size() == 2 * conf.size());
  for (const auto& row : summary["results"]) {
    CHECK(row["setting"].contains("depth"));
    CHECK(row["setting"].contains("control"));
    CHECK(row["setting"].contains("sharpness"));
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("ncl-depth --quick runs, and bad flags exit 2 naming the problem", "[experiment][depth][cli]") {
  const auto dir = depth_scratch("quick");
  const auto quick = run_depth("--quick --out " + dir.string());
  INFO(quick.err);
  CHECK(quick.status == 0);
  CHECK_THAT(quick.out, Catch::Contains("wrote"));
  const std::vector<std::pair<std::string, std::string>> bad{
      {"--depths 0", "--depths: '0' is not a number in [1, 30]"},
      {"--depths 2.5", "--depths: 2.5 is not an integer"},
      {"--sharpness soft", "--sharpness: 'soft' is not a number"},
      {"--softness 0.7", "--softness: '0.7' is not a number in [0, 0.5]"},
      {"--control fast", "--control: 'fast' is not per_line or mean_field"},
      {"--soft-args x", "--soft-args: 'x' is not a, b or d"},
      {"--lines 4", "L = 4"},
      {"--n 8 --lines 8 --depths 9", "needs memory M >= d"},
      {"--pairs 0", "--pairs must be in [1, 4096]"},
      {"--bogus", "bogus"},
  };
  for (const auto& [args, message] : bad) {
    const auto r = run_depth(args + " --out " + dir.string());
    INFO(args << ": " << r.err);
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains(message));
  }
  std::filesystem::remove_all(dir);
}

#endif  // NCL_HAVE_NCL_DEPTH
