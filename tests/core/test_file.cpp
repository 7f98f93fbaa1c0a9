#include <catch2/catch.hpp>

#include <filesystem>

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

TEST_CASE("file errors name the path", "[core][file]") {
  CHECK_THROWS_WITH(ncl::read_file("/nonexistent/ncl/file"),
                    Catch::Contains("/nonexistent/ncl/file: cannot open"));
  CHECK_THROWS_AS(ncl::write_file_atomic("/nonexistent/ncl/dir/file", "x"), ncl::io_error);
}
