// ncl's exceptions: every error the library raises derives from ncl::error, and its
// message names what went wrong and where (the argument and its shape, or FILE:LINE:COL).
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace ncl {

/// Base of every exception ncl throws.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A tensor argument has the wrong shape; the message names the argument and both shapes.
class shape_error : public error {
 public:
  using error::error;
};

/// An argument's value is out of its domain (a value range of 0, a probability above 1, ...).
class value_error : public error {
 public:
  using error::error;
};

/// Text that does not parse (assembly, JSON headers, token files). what() reads
/// "FILE:LINE:COL: error: message", the form compilers use, so editors can jump to it.
class parse_error : public error {
 public:
  parse_error(std::string file, int line, int column, const std::string& message)
      : error(file + ":" + std::to_string(line) + ":" + std::to_string(column) +
              ": error: " + message),
        file_(std::move(file)), line_(line), column_(column), message_(message) {}

  const std::string& file() const noexcept { return file_; }
  int line() const noexcept { return line_; }
  int column() const noexcept { return column_; }
  /// The message without its location.
  const std::string& message() const noexcept { return message_; }

 private:
  std::string file_;
  int line_;
  int column_;
  std::string message_;
};

/// A file cannot be read or written, or its contents are corrupt or truncated.
class io_error : public error {
 public:
  using error::error;
};

namespace detail {

/// Concatenates anything streamable into one string: detail::concat("n = ", n).
template <class... Args>
std::string concat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

}  // namespace detail
}  // namespace ncl
