// ncl-depth: why soft execution loses the answer at depth, measured (the cause part of the
// Fibonacci depth study, paper Tables 1 and 2). No learning: the stdlib's compiled `fib`
// ("from inputs a and b to recursion depth d", 11 d + 4 steps) runs on the soft machine
// beside the discrete reference machine, for every depth, control form (per-line and the
// paper's mean-field), program sharpness (the exact one-hot compilation, or softmax(s * one-hot)
// fields) and softness of the inputs (each argument register (1 - e) one-hot + e spread
// evenly over the other values, as argument heads that are not yet sharp give it). It records
//   the answer's confidence p(r0 = fib(a, b, d) mod n) after the run, and its accuracy;
//   per step, the counter's mass off the reference machine's line ("off path") and the
//   largest mass off the reference value in r0-r3 ("register error");
//   the error's growth: the per-step factor of the off-path mass fitted over the descent.
// Writes confidence.csv, steps.csv, summary.json and figures to --out.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <ncl/core/plot.hpp>
#include <ncl/core/rng.hpp>
#include <ncl/library/linker.hpp>
#include <ncl/machine/assembler.hpp>
#include <ncl/machine/interpreter.hpp>
#include <ncl/machine/program.hpp>
#include <ncl/machine/reference.hpp>

#include "ncl_experiment/cli.hpp"
#include "ncl_experiment/report.hpp"

namespace {

namespace xp = ncl_experiment;
namespace machine = ncl::machine;
using ncl::index;
using json = nlohmann::ordered_json;

struct run_config {
  machine::control_mode control;
  std::optional<double> sharpness;  // none: the exact one-hot compilation
  double softness = 0;              // e: the mass each softened argument register puts off its value
  int depth = 1;
  std::vector<bool> soft_args{true, true, true};  // which of a (r0), b (r1), d (r2) are softened
};

std::string sharpness_name(const std::optional<double>& s) {
  if (!s) return "exact";
  std::ostringstream out;
  out << *s;
  return out.str();
}

struct run_result {
  run_config config;
  double confidence = 0, min_confidence = 0, accuracy = 0;
  double growth_per_step = NAN;                 // fitted over the descent; NaN where nothing leaks
  std::vector<double> off_path, register_error;  // per step, batch means
};

// fib(a, b, d) = fib(b, a + b, d - 1), fib(a, b, 0) = a, mod n.
std::int64_t fib(std::int64_t a, std::int64_t b, int d, std::int64_t n) {
  for (int k = 0; k < d; ++k) {
    const std::int64_t c = (a + b) % n;
    a = b;
    b = c;
  }
  return a;
}

// Puts (1 - e) on `value` and e / (n - 1) on every other value of register r, row b.
void soften(machine::soft_state<double>& s, const machine::machine_shape& shape, index b, index r,
            std::int64_t value, double e) {
  for (index v = 0; v < shape.n; ++v) {
    s.registers(b, r * shape.n + v) = v == value ? 1 - e : e / static_cast<double>(shape.n - 1);
  }
}

run_result run_one(const run_config& c, const machine::assembled_program& assembled, machine::machine_shape shape,
                   const std::vector<std::pair<std::int64_t, std::int64_t>>& pairs) {
  const std::int64_t halt = 11 * c.depth + 4;
  shape.steps = halt + 2;
  const auto B = static_cast<index>(pairs.size());
  const machine::soft_program<double> program =
      c.sharpness ? machine::softmax_program(machine::compile_logits<double>(assembled, shape, *c.sharpness))
                  : machine::compile<double>(assembled, shape);
  const machine::soft_interpreter<double> interpreter(shape, ncl::alu::backend::table, c.control);
  const machine::reference_machine reference(assembled, shape);
  machine::soft_state<double> soft = machine::initial_soft_state<double>(shape, assembled.entry, {}, B);
  std::vector<machine::reference_state> ref;
  for (index b = 0; b < B; ++b) {
    const auto [a, bb] = pairs[static_cast<std::size_t>(b)];
    std::vector<std::int64_t> regs(static_cast<std::size_t>(shape.registers), 0);
    regs[0] = a;
    regs[1] = bb;
    regs[2] = c.depth;
    ref.push_back(reference.initial_state({regs, {}}));
    for (index r = 0; r < 3; ++r) {
      soften(soft, shape, b, r, regs[static_cast<std::size_t>(r)], c.soft_args[static_cast<std::size_t>(r)] ? c.softness : 0.0);
    }
  }
  run_result out{c, 0, 1, 0, NAN, {}, {}};
  auto measure = [&] {
    double off = 0, reg = 0;
    for (index b = 0; b < B; ++b) {
      const auto& s = ref[static_cast<std::size_t>(b)];
      off += 1 - soft.counter(b, s.pc);
      double worst = 0;
      for (index r = 0; r < 4; ++r) worst = std::max(worst, 1 - soft.registers(b, r * shape.n + s.registers[static_cast<std::size_t>(r)]));
      reg += worst;
    }
    out.off_path.push_back(std::max(0.0, off / static_cast<double>(B)));
    out.register_error.push_back(std::max(0.0, reg / static_cast<double>(B)));
  };
  measure();
  for (std::int64_t t = 0; t < shape.steps; ++t) {
    interpreter.step(soft, program);
    for (auto& s : ref) {
      if (!s.halted) reference.step(s);
    }
    measure();
  }
  double right = 0, total = 0;
  for (index b = 0; b < B; ++b) {
    const auto [a, bb] = pairs[static_cast<std::size_t>(b)];
    const std::int64_t answer = fib(a, bb, c.depth, shape.n);
    if (ref[static_cast<std::size_t>(b)].registers[0] != answer) {
      throw ncl::value_error("ncl-depth: the reference machine's fib disagrees with fib(a, b, d)");
    }
    const double p = soft.registers(b, answer);
    index best = 0;
    for (index v = 1; v < shape.n; ++v) {
      if (soft.registers(b, v) > soft.registers(b, best)) best = v;
    }
    right += best == answer;
    total += p;
    out.min_confidence = std::min(out.min_confidence, p);
  }
  out.confidence = total / static_cast<double>(B);
  out.accuracy = right / static_cast<double>(B);
  // The per-step growth of the off-path mass over the descent (steps 1 .. 8 d + 1), a least-
  // squares line through log(off path) where it is above rounding.
  double sx = 0, sy = 0, sxx = 0, sxy = 0, k = 0;
  for (std::int64_t t = 1; t <= 8 * c.depth + 1 && t < static_cast<std::int64_t>(out.off_path.size()); ++t) {
    const double y = out.off_path[static_cast<std::size_t>(t)];
    if (!(y > 1e-13) || y > 0.5) continue;
    sx += static_cast<double>(t);
    sy += std::log(y);
    sxx += static_cast<double>(t * t);
    sxy += static_cast<double>(t) * std::log(y);
    k += 1;
  }
  if (k >= 3 && k * sxx - sx * sx > 0) out.growth_per_step = std::exp((k * sxy - sx * sy) / (k * sxx - sx * sx));
  return out;
}

// The comma-separated items of a flag's value; an empty list is a usage error.
std::vector<std::string> split_list(const std::string& flag, const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  if (out.empty()) throw xp::usage_error(flag + ": empty list");
  return out;
}

double parse_number(const std::string& flag, const std::string& item, double lo, double hi) {
  char* end = nullptr;
  const double x = std::strtod(item.c_str(), &end);
  if (item.empty() || *end != '\0' || !std::isfinite(x) || x < lo || x > hi) {
    throw xp::usage_error(ncl::detail::concat(flag, ": '", item, "' is not a number in [", lo, ", ", hi, "]"));
  }
  return x;
}

std::vector<double> parse_list(const std::string& flag, const std::string& text, double lo, double hi) {
  std::vector<double> out;
  for (const auto& item : split_list(flag, text)) out.push_back(parse_number(flag, item, lo, hi));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  return xp::guarded_main("ncl-depth", [&] {
    CLI::App app{"ncl-depth: the stdlib's fib on the soft machine beside the reference machine, by depth, control, "
                 "program sharpness and input softness (why soft execution loses the answer at depth)",
                 "ncl-depth"};
    xp::common_options common;
    common.out = "results/depth";
    std::string depths = "1,2,3,4,5,6,7,8", sharpness = "exact,32,24,20,16,12", softness = "0,1e-4,1e-3,1e-2,1e-1";
    std::string controls = "per_line,mean_field", soft_args = "a,b,d";
    std::int64_t n = 32, lines = 32, pairs_count = 16;
    app.add_option("--seed", common.seed, "draws the (a, b) pairs")->capture_default_str();
    app.add_option("--out", common.out, "where everything is written (created if missing)")->capture_default_str();
    app.add_option("--threads", common.threads, "worker threads (0: every core; the numbers do not depend on it)")
        ->capture_default_str();
    app.add_flag("--quick", common.quick, "depths 1-3, sharpness exact and 16, softness 0 and 1e-2, 4 pairs");
    app.add_option("--depths", depths, "recursion depths, comma-separated, each in [1, 30]")->capture_default_str();
    app.add_option("--sharpness", sharpness, "program sharpness s (softmax(s * one-hot) fields) or 'exact', comma-separated")
        ->capture_default_str();
    app.add_option("--softness", softness, "input softness e in [0, 0.5], comma-separated")->capture_default_str();
    app.add_option("--soft-args", soft_args, "the arguments the softness applies to: a, b, d, comma-separated")
        ->capture_default_str();
    app.add_option("--control", controls, "per_line, mean_field or both, comma-separated")->capture_default_str();
    app.add_option("--n", n, "value range n (a, b in 0..n-1, answers mod n)")->capture_default_str();
    app.add_option("--lines", lines, "program lines L (at least the program's 11, at most n)")->capture_default_str();
    app.add_option("--pairs", pairs_count, "(a, b) pairs per run, the batch")->capture_default_str();
    if (int status = xp::parse(app, argc, argv); status >= 0) return status;
    xp::check_common_options(common);
    if (common.quick) {
      if (app.count("--depths") == 0) depths = "1,2,3";
      if (app.count("--sharpness") == 0) sharpness = "exact,16";
      if (app.count("--softness") == 0) softness = "0,1e-2";
      if (app.count("--pairs") == 0) pairs_count = 4;
    }
    if (pairs_count < 1 || pairs_count > 4096) throw xp::usage_error("--pairs must be in [1, 4096]");
    std::vector<int> depth_list;
    for (double d : parse_list("--depths", depths, 1, 30)) {
      if (d != std::floor(d)) throw xp::usage_error(ncl::detail::concat("--depths: ", d, " is not an integer"));
      depth_list.push_back(static_cast<int>(d));
    }
    std::vector<std::optional<double>> sharp_list;
    for (const auto& item : split_list("--sharpness", sharpness)) {
      sharp_list.push_back(item == "exact" ? std::nullopt : std::optional<double>(parse_number("--sharpness", item, 0.01, 1000)));
    }
    const auto soft_list = parse_list("--softness", softness, 0, 0.5);
    std::vector<bool> soft_mask(3, false);
    for (const auto& item : split_list("--soft-args", soft_args)) {
      if (item != "a" && item != "b" && item != "d") throw xp::usage_error("--soft-args: '" + item + "' is not a, b or d");
      soft_mask[item == "a" ? 0 : item == "b" ? 1 : 2] = true;
    }
    std::vector<machine::control_mode> control_list;
    for (const auto& item : split_list("--control", controls)) {
      if (item == "per_line") control_list.push_back(machine::control_mode::per_line);
      else if (item == "mean_field") control_list.push_back(machine::control_mode::mean_field);
      else throw xp::usage_error("--control: '" + item + "' is not per_line or mean_field");
    }
    machine::machine_shape shape;
    shape.n = n;
    shape.registers = 8;
    shape.memory = std::min<std::int64_t>(n, 32);
    shape.lines = lines;
    shape.steps = 11 * *std::max_element(depth_list.begin(), depth_list.end()) + 6;
    try {
      shape.validate();
    } catch (const ncl::error& e) {
      throw xp::usage_error(e.what());
    }
    if (*std::max_element(depth_list.begin(), depth_list.end()) > shape.memory) {
      throw xp::usage_error(ncl::detail::concat("--depths: fib at depth d needs memory M >= d; M = ", shape.memory));
    }
    const auto path = ncl::library::stdlib_directory() / "fibonacci.s";
    const auto assembled = machine::assemble_files({path.string()}, shape);

    const auto started = std::chrono::steady_clock::now();
    const std::filesystem::path out(common.out);
    xp::make_out_dir(out);
    ncl::rng random(common.seed);
    std::vector<std::pair<std::int64_t, std::int64_t>> pairs;
    for (std::int64_t i = 0; i < pairs_count; ++i) pairs.emplace_back(random.integer(0, n), random.integer(0, n));
    std::printf("ncl-depth: fib on n = %lld, L = %lld, %lld pairs; %zu depths x %zu sharpnesses x %zu softnesses x %zu controls\n",
                static_cast<long long>(n), static_cast<long long>(lines), static_cast<long long>(pairs_count),
                depth_list.size(), sharp_list.size(), soft_list.size(), control_list.size());

    std::vector<run_result> results;
    const std::size_t total = depth_list.size() * sharp_list.size() * soft_list.size() * control_list.size();
    for (auto control : control_list) {
      for (const auto& s : sharp_list) {
        for (double e : soft_list) {
          for (int d : depth_list) {
            results.push_back(run_one({control, s, e, d, soft_mask}, assembled, shape, pairs));
            const auto& r = results.back();
            std::printf("[%3zu/%zu] %-10s sharpness %-5s softness %-6g depth %2d: confidence %.6f (min %.6f), accuracy %.3f, "
                        "growth per step %.3g\n",
                        results.size(), total, std::string(machine::control_mode_name(control)).c_str(),
                        sharpness_name(s).c_str(), e, d, r.confidence, r.min_confidence, r.accuracy, r.growth_per_step);
            std::fflush(stdout);
          }
        }
      }
    }

    std::ostringstream conf, steps;
    conf << "control,sharpness,softness,depth,confidence,min_confidence,accuracy,growth_per_step\n";
    steps << "control,sharpness,softness,depth,step,off_path,register_error\n";
    std::vector<xp::summary_row> rows;
    for (const auto& r : results) {
      const std::string control(machine::control_mode_name(r.config.control));
      const std::string sharp = sharpness_name(r.config.sharpness);
      conf << control << "," << sharp << "," << r.config.softness << "," << r.config.depth << "," << r.confidence << ","
           << r.min_confidence << "," << r.accuracy << "," << r.growth_per_step << "\n";
      for (std::size_t t = 0; t < r.off_path.size(); ++t) {
        steps << control << "," << sharp << "," << r.config.softness << "," << r.config.depth << "," << t << ","
              << r.off_path[t] << "," << r.register_error[t] << "\n";
      }
      const json setting{{"depth", r.config.depth}, {"control", control}, {"sharpness", sharp}, {"softness", r.config.softness},
                         {"soft_args", soft_args}};
      rows.push_back({"machine", setting, "answer_confidence", r.confidence, std::nullopt, 0, 0});
      rows.push_back({"machine", setting, "accuracy", r.accuracy, std::nullopt, 0, 0});
    }
    ncl::write_file_atomic(out / "confidence.csv", conf.str());
    ncl::write_file_atomic(out / "steps.csv", steps.str());

    // Figures: confidence against depth (hard inputs), one line per control and sharpness; the
    // same for the softnesses at the sharpest soft program; off-path mass by step at the deepest
    // depth (hard inputs).
    auto find = [&](machine::control_mode c, const std::optional<double>& s, double e, int d) -> const run_result* {
      for (const auto& r : results) {
        if (r.config.control == c && r.config.sharpness == s && r.config.softness == e && r.config.depth == d) return &r;
      }
      return nullptr;
    };
    ncl::line_chart by_depth{"fib: the answer's confidence by depth (inputs e = " + std::to_string(soft_list.front()) + ")",
                             "recursion depth", "p(r0 = answer)", false, {}};
    ncl::line_chart by_softness{"fib: the answer's confidence by depth, soft inputs", "recursion depth", "p(r0 = answer)", false, {}};
    ncl::line_chart by_step{"fib: the counter's mass off the reference line, depth " + std::to_string(depth_list.back()),
                            "step", "off-path mass", true, {}};
    for (auto c : control_list) {
      const std::string cn(machine::control_mode_name(c));
      for (const auto& s : sharp_list) {
        ncl::plot_series line{cn + ", s = " + sharpness_name(s), {}, {}};
        for (int d : depth_list) {
          if (const auto* r = find(c, s, soft_list.front(), d)) line.x.push_back(d), line.y.push_back(r->confidence);
        }
        by_depth.series.push_back(line);
        if (const auto* r = find(c, s, soft_list.front(), depth_list.back())) {
          ncl::plot_series st{cn + ", s = " + sharpness_name(s), {}, r->off_path};
          for (std::size_t t = 0; t < r->off_path.size(); ++t) st.x.push_back(static_cast<double>(t));
          by_step.series.push_back(st);
        }
      }
      for (double e : soft_list) {
        ncl::plot_series line{cn + ", " + sharpness_name(sharp_list.front()) + ", e = " + (std::ostringstream() << e).str(), {}, {}};
        for (int d : depth_list) {
          if (const auto* r = find(c, sharp_list.front(), e, d)) line.x.push_back(d), line.y.push_back(r->confidence);
        }
        by_softness.series.push_back(line);
      }
    }
    by_depth.write((out / "confidence_by_depth.svg").string());
    by_softness.write((out / "confidence_by_softness.svg").string());
    by_step.write((out / "off_path_by_step.svg").string());

    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    json config{{"program", "stdlib fibonacci.s (fib)"}, {"n", n}, {"lines", lines}, {"registers", shape.registers},
                {"memory", shape.memory}, {"pairs", pairs_count}, {"depths", depth_list}, {"softness", soft_list},
                {"soft_args", soft_args}, {"quick", common.quick}, {"threads", xp::threads_in_use(common)}};
    json sharp_names = json::array();
    for (const auto& s : sharp_list) sharp_names.push_back(sharpness_name(s));
    config["sharpness"] = sharp_names;
    json control_names = json::array();
    for (auto c : control_list) control_names.push_back(std::string(machine::control_mode_name(c)));
    config["control"] = control_names;
    xp::write_summary(out, "depth", common.seed, config, rows, seconds);
    std::printf("wrote %s (summary.json, confidence.csv, steps.csv, confidence_by_depth.svg, confidence_by_softness.svg, "
                "off_path_by_step.svg) in %.1f s\n",
                out.string().c_str(), seconds);
    return 0;
  });
}
