#include <catch2/catch.hpp>

#include <filesystem>
#include <ostream>

#include "ncl/core/file.hpp"

namespace fs = std::filesystem;

TEST_CASE("atomic writes replace whole files and leave no temporary behind", "[core][file]") {
  const fs::path dir = fs::temp_directory_path() / "ncl_test_file";
  fs::create_directories(dir);
  const fs::path path = dir / "out.txt";
  ncl::write_file_atomic(path, "first version\n");
  CHECK(ncl::read_file(path) == "first version\n");
  ncl::write_file_atomic(path, std::string("second\0version", 14));
  CHECK(ncl::read_file(path) == std::string("second\0version", 14));
  for (const auto& entry : fs::directory_iterator(dir)) CHECK(entry.path().filename() == "out.txt");
  fs::remove_all(dir);
}

TEST_CASE("streamed atomic writes: a failing writer leaves the old file and no temporary", "[core][file]") {
  const fs::path dir = fs::temp_directory_path() / "ncl_test_file_stream";
  fs::create_directories(dir);
  const fs::path path = dir / "out.bin";
  ncl::write_file_atomic(path, [](std::ostream& out) { out << "streamed " << 42; });
  CHECK(ncl::read_file(path) == "streamed 42");
  CHECK_THROWS_AS(ncl::write_file_atomic(path, [](std::ostream& out) {
                    out << "half";
                    throw ncl::value_error("the writer failed");
                  }),
                  ncl::value_error);
  CHECK(ncl::read_file(path) == "streamed 42");
  // Two writes in a row use two temporary names; after each, only the file is left.
  ncl::write_file_atomic(path, "a");
  ncl::write_file_atomic(path, "b");
  CHECK(ncl::read_file(path) == "b");
  for (const auto& entry : fs::directory_iterator(dir)) CHECK(entry.path().filename() == "out.bin");
  fs::remove_all(dir);
}

TEST_CASE("file errors name the path", "[core][file]") {
  CHECK_THROWS_WITH(ncl::read_file("/nonexistent/ncl/file"),
                    Catch::Contains("/nonexistent/ncl/file: cannot open"));
  CHECK_THROWS_AS(ncl::write_file_atomic("/nonexistent/ncl/dir/file", "x"), ncl::io_error);
}

#include "ncl/core/plot.hpp"

TEST_CASE("line charts draw every finite point and reject ragged series", "[core][plot]") {
  ncl::line_chart chart{"loss", "step", "loss", true, {{"train", {0, 1, 2, 3}, {1.0, 0.1, 0.0, 0.01}}}};
  const std::string svg = chart.svg();
  CHECK(svg.rfind("<svg", 0) == 0);
  // y = 0 cannot be drawn on a log axis: 3 of the 4 points are.
  const auto points = svg.substr(svg.find("points=\"") + 8);
  std::size_t commas = 0;
  for (char c : points.substr(0, points.find('"'))) commas += c == ',';
  CHECK(commas == 3);
  CHECK(svg.find("(log scale)") != std::string::npos);
  ncl::line_chart ragged{"x", "x", "y", false, {{"bad", {0, 1}, {1}}}};
  CHECK_THROWS_AS(ragged.svg(), ncl::shape_error);
}

TEST_CASE("read_file refuses a directory by name (regression: a directory read as an empty file)",
          "[core][file]") {
  const fs::path dir = fs::temp_directory_path() / "ncl_test_file_dir";
  fs::create_directories(dir);
  CHECK_THROWS_WITH(ncl::read_file(dir), Catch::Contains(dir.string()) && Catch::Contains("is a directory"));
  fs::remove_all(dir);
  CHECK_THROWS_WITH(ncl::read_file(dir), Catch::Contains("cannot open for reading"));
}

TEST_CASE("read_file refuses a file longer than its limit while reading, also an endless device",
          "[core][file]") {
  const fs::path dir = fs::temp_directory_path() / "ncl_test_file_limit";
  fs::create_directories(dir);
  const fs::path path = dir / "big.txt";
  ncl::write_file_atomic(path, std::string(100000, 'x'));
  CHECK(ncl::read_file(path, 100000).size() == 100000);
  CHECK_THROWS_WITH(ncl::read_file(path, 99999), Catch::Contains("more than 99999 bytes"));
  CHECK_THROWS_WITH(ncl::read_file("/dev/zero", 1 << 20), Catch::Contains("/dev/zero: more than 1048576 bytes"));
  fs::remove_all(dir);
}
