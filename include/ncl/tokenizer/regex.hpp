// The Unicode pre-tokenizer regex: a PCRE2 pattern compiled with UTF + UCP (so \p{L},
// \p{N} and \s follow Unicode) and JIT-compiled when the platform allows, plus the
// "Split, behavior Isolated" rule of Hugging Face tokenizers: every match is a piece and so
// is every stretch of text between matches.
#pragma once

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "ncl/core/error.hpp"
#include "ncl/tokenizer/tokenizer.hpp"

namespace ncl {

/// A compiled pre-tokenizer pattern. Thread-safe to use: each split() call has its own
/// match data. Move-only.
class split_regex {
 public:
  /// Compiles `pattern`; throws ncl::value_error naming the offset of a syntax error.
  explicit split_regex(std::string pattern) : pattern_(std::move(pattern)) {
    int error_code = 0;
    PCRE2_SIZE error_offset = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern_.data()), pattern_.size(),
                                     PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
    if (!code) {
      PCRE2_UCHAR buffer[256];
      pcre2_get_error_message(error_code, buffer, sizeof buffer);
      throw value_error(detail::concat("split_regex: cannot compile /", pattern_, "/ at offset ",
                                       error_offset, ": ", reinterpret_cast<const char*>(buffer)));
    }
    code_.reset(code);
    // JIT is an optimisation only: where it is unavailable pcre2_match interprets.
    jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  }

  const std::string& pattern() const { return pattern_; }
  bool jit() const { return jit_; }

  /// Calls piece(begin, end) for each piece of text[begin, end) in order: matches and the
  /// text between them, never an empty piece. `text` must be valid UTF-8 (not re-checked).
  template <class Piece>
  void split(std::string_view text, std::size_t begin, std::size_t end, Piece&& piece) const {
    std::unique_ptr<pcre2_match_data, match_data_deleter> match(
        pcre2_match_data_create_from_pattern(code_.get(), nullptr));
    if (!match) throw error("split_regex: out of memory for PCRE2 match data");
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    std::size_t last = begin;  // end of the previous piece
    std::size_t pos = begin;
    while (pos < end) {
      // pcre2_jit_match is the documented fast path: it skips pcre2_match's argument checks.
      const int rc = jit_ ? pcre2_jit_match(code_.get(), subject, end, pos, 0, match.get(), nullptr)
                          : pcre2_match(code_.get(), subject, end, pos, PCRE2_NO_UTF_CHECK, match.get(), nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        PCRE2_UCHAR buffer[256];
        pcre2_get_error_message(rc, buffer, sizeof buffer);
        throw error(detail::concat("split_regex: matching /", pattern_, "/ at byte offset ", pos,
                                   " failed: ", reinterpret_cast<const char*>(buffer)));
      }
      const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.get());
      const std::size_t match_begin = ovector[0];
      const std::size_t match_end = ovector[1];
      if (match_begin > last) piece(last, match_begin);
      if (match_end > match_begin) {
        piece(match_begin, match_end);
        last = match_end;
        pos = match_end;
      } else {
        // An empty match isolates nothing: step over one character and search again.
        last = match_begin;
        pos = match_begin + detail::utf8_sequence_length(text, match_begin);
      }
    }
    if (end > last) piece(last, end);
  }

 private:
  struct code_deleter {
    void operator()(pcre2_code* code) const { pcre2_code_free(code); }
  };
  struct match_data_deleter {
    void operator()(pcre2_match_data* data) const { pcre2_match_data_free(data); }
  };

  std::string pattern_;
  std::unique_ptr<pcre2_code, code_deleter> code_;
  bool jit_ = false;
};

}  // namespace ncl
