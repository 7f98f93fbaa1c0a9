// ncl-run: assembles ncl machine programs and runs them on the soft machine (or, with
// --reference, the discrete one), then prints the final state (ISA.md, "ncl-run").
//
// Exit status: 0 on a run, 2 on an assembly or usage error or an unreadable file (message on
// stderr), 1 otherwise (example_main.hpp: also when the output cannot be written).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <ncl/alu/alu.hpp>
#include <ncl/machine/assembler.hpp>
#include <ncl/machine/interpreter.hpp>
#include <ncl/machine/program.hpp>
#include <ncl/machine/reference.hpp>

#include "../common/example_main.hpp"

namespace {

namespace machine = ncl::machine;
using ncl::index;

/// A bad command line: exit status 2.
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

constexpr const char* usage_text =
    "usage: ncl-run [options] FILE.s [MORE.s ...]\n"
    "  --n N              value range (default 32)\n"
    "  --registers R      registers, sp = r(R-2), ra = r(R-1) (default 8)\n"
    "  --memory M         memory cells, M <= n (default 32, or n if n < 32)\n"
    "  --lines L          program lines, L <= n (default n)\n"
    "  --steps T          step budget (default 256)\n"
    "  --set REG=V        set a register (repeatable)\n"
    "  --mem A=V1,V2,...  fill memory from address A (repeatable)\n"
    "  --entry LABEL      start at LABEL (default line 0)\n"
    "  --sharpness B      run on softmax(B * one-hot) program fields\n"
    "  --alu table|dense|circuit       arithmetic backend (default table)\n"
    "  --control per_line|mean_field   control flow form (default per_line)\n"
    "  --trace            print each step (on stderr with --json)\n"
    "  --json             print the final state as one JSON object\n"
    "  --reference        run the discrete reference interpreter\n"
    "exit status: 0 on a run, 2 on a usage or assembly error or an unreadable file, 1 otherwise\n";

struct options {
  machine::machine_shape shape;
  bool lines_set = false, memory_set = false;
  std::vector<std::string> files;
  std::vector<std::string> sets, mems;
  std::string entry;
  std::optional<double> sharpness;
  std::string alu = "table";
  std::string control = "per_line";
  bool trace = false, json = false, reference = false;
};

std::int64_t parse_integer(const std::string& text, const std::string& what) {
  const bool ok = !text.empty() && text.size() <= 18 &&
                  std::all_of(text.begin(), text.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
  if (!ok) throw usage_error(what + ": '" + text + "' is not a non-negative decimal integer");
  return std::stoll(text);
}

options parse_options(int argc, char** argv) {
  options o;
  std::int64_t n_value = 32;
  std::optional<std::int64_t> registers, memory, lines, steps;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::optional<std::string> inline_value;
    if (arg.rfind("--", 0) == 0) {
      if (const auto eq = arg.find('='); eq != std::string::npos) {
        inline_value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
      }
    }
    auto value = [&]() -> std::string {
      if (inline_value) return *inline_value;
      if (i + 1 >= argc) throw usage_error(arg + " needs a value");
      return argv[++i];
    };
    auto flag = [&] {
      if (inline_value) throw usage_error(arg + " takes no value");
    };
    if (arg == "--n") n_value = parse_integer(value(), "--n");
    else if (arg == "--registers") registers = parse_integer(value(), "--registers");
    else if (arg == "--memory") memory = parse_integer(value(), "--memory");
    else if (arg == "--lines") lines = parse_integer(value(), "--lines");
    else if (arg == "--steps") steps = parse_integer(value(), "--steps");
    else if (arg == "--set") o.sets.push_back(value());
    else if (arg == "--mem") o.mems.push_back(value());
    else if (arg == "--entry") o.entry = value();
    else if (arg == "--sharpness") {
      const std::string v = value();
      std::size_t used = 0;
      double b = 0;
      try {
        b = std::stod(v, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != v.size() || v.empty() || !std::isfinite(b) || b < 0) {
        throw usage_error("--sharpness: '" + v + "' is not a finite number >= 0");
      }
      o.sharpness = b;
    } else if (arg == "--alu") o.alu = value();
    else if (arg == "--control") o.control = value();
    else if (arg == "--trace") { flag(); o.trace = true; }
    else if (arg == "--json") { flag(); o.json = true; }
    else if (arg == "--reference") { flag(); o.reference = true; }
    else if (arg == "--help" || arg == "-h") {
      std::fputs(usage_text, stdout);
      std::exit(0);
    } else if (arg.rfind("-", 0) == 0 && arg.size() > 1) throw usage_error("unknown option " + arg);
    else o.files.push_back(arg);
  }
  if (o.files.empty()) throw usage_error("no assembly file given");
  o.shape.n = n_value;
  o.shape.registers = registers.value_or(8);
  o.shape.memory = memory.value_or(std::min<std::int64_t>(32, n_value));
  o.shape.lines = lines.value_or(n_value);
  o.shape.steps = steps.value_or(256);
  try {
    o.shape.validate();
  } catch (const ncl::value_error& e) {
    throw usage_error(e.what());
  }
  if (o.control != "per_line" && o.control != "mean_field") {
    throw usage_error("--control: '" + o.control + "' is not per_line or mean_field");
  }
  return o;
}

/// Registers and memory from --set and --mem.
machine::machine_inputs parse_inputs(const options& o) {
  const auto& s = o.shape;
  machine::machine_inputs in;
  in.registers.assign(static_cast<std::size_t>(s.registers), 0);
  in.memory.assign(static_cast<std::size_t>(s.memory), 0);
  auto value_in_range = [&](const std::string& text, const std::string& what) {
    const std::int64_t v = parse_integer(text, what);
    if (v >= s.n) throw usage_error(what + ": value " + text + " is outside [0, n = " + std::to_string(s.n) + ")");
    return v;
  };
  for (const auto& set : o.sets) {
    const auto eq = set.find('=');
    if (eq == std::string::npos) throw usage_error("--set '" + set + "': expected REG=V");
    const std::string reg = set.substr(0, eq);
    const auto r = machine::detail::register_index(reg, s.registers);
    if (!r || *r < 0) {
      throw usage_error("--set '" + set + "': unknown register '" + reg + "' (r0..r" +
                        std::to_string(s.registers - 1) + ", sp, ra)");
    }
    in.registers[static_cast<std::size_t>(*r)] = value_in_range(set.substr(eq + 1), "--set " + set);
  }
  for (const auto& mem : o.mems) {
    const auto eq = mem.find('=');
    if (eq == std::string::npos) throw usage_error("--mem '" + mem + "': expected A=V1,V2,...");
    const std::int64_t address = parse_integer(mem.substr(0, eq), "--mem " + mem + ": address");
    std::vector<std::int64_t> values;
    std::string rest = mem.substr(eq + 1);
    std::size_t pos = 0;
    while (true) {
      const auto comma = rest.find(',', pos);
      values.push_back(value_in_range(rest.substr(pos, comma - pos), "--mem " + mem));
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
    if (address + static_cast<std::int64_t>(values.size()) > s.memory) {
      throw usage_error("--mem '" + mem + "': cells " + std::to_string(address) + ".." +
                        std::to_string(address + static_cast<std::int64_t>(values.size()) - 1) +
                        " do not fit in M = " + std::to_string(s.memory) + " cells");
    }
    for (std::size_t k = 0; k < values.size(); ++k) in.memory[static_cast<std::size_t>(address) + k] = values[k];
  }
  return in;
}

/// What ncl-run prints, from either machine.
struct final_state {
  std::vector<std::int64_t> registers, memory;
  std::vector<double> register_confidence, memory_confidence;
  double halted = 0;
  std::optional<std::int64_t> halt_step;
  std::int64_t pc = 0;
  std::int64_t steps = 0;
};

void print_trace_line(std::FILE* out, std::int64_t step, std::int64_t line, double p_line,
                      const std::string& text, double p_inst, const std::vector<std::int64_t>& regs,
                      const std::vector<double>& conf, const machine::machine_shape& shape) {
  std::fprintf(out, "step %4lld  line %3lld (p=%.3f)  %-24s (p=%.3f) |", static_cast<long long>(step),
               static_cast<long long>(line), p_line, text.c_str(), p_inst);
  for (std::size_t r = 0; r < regs.size(); ++r) {
    std::fprintf(out, " %s=%lld (%.3f)", machine::register_name(static_cast<int>(r), shape).c_str(),
                 static_cast<long long>(regs[r]), conf[r]);
  }
  std::fprintf(out, "\n");
}

final_state run_reference(const options& o, const machine::assembled_program& program,
                          const machine::machine_inputs& inputs) {
  const machine::reference_machine m(program, o.shape);
  machine::reference_state s = m.initial_state(inputs);
  std::FILE* trace = o.json ? stderr : stdout;
  const std::vector<double> ones(static_cast<std::size_t>(o.shape.registers), 1.0);
  for (std::int64_t t = 0; t < o.shape.steps && !s.halted; ++t) {
    const std::int64_t line = s.pc;
    const std::string text = machine::format_instruction(m.fetch(line), o.shape);
    m.step(s);
    if (o.trace) print_trace_line(trace, s.steps, line, 1.0, text, 1.0, s.registers, ones, o.shape);
  }
  final_state f;
  f.registers = s.registers;
  f.memory = s.memory;
  f.register_confidence = ones;
  f.memory_confidence.assign(s.memory.size(), 1.0);
  f.halted = s.halted ? 1.0 : 0.0;
  f.halt_step = s.halt_step;
  f.pc = s.pc;
  f.steps = s.steps;
  return f;
}

/// Argmax and its probability of each n-wide block of row 0 of m.
template <class S>
void decode_blocks(std::vector<std::int64_t>& values, std::vector<double>& conf, const ncl::matrix<S>& m,
                   std::int64_t blocks, std::int64_t n) {
  values.assign(static_cast<std::size_t>(blocks), 0);
  conf.assign(static_cast<std::size_t>(blocks), 0.0);
  for (std::int64_t k = 0; k < blocks; ++k) {
    index best = 0;
    for (index v = 1; v < n; ++v) {
      if (m(0, k * n + v) > m(0, k * n + best)) best = v;
    }
    values[static_cast<std::size_t>(k)] = best;
    conf[static_cast<std::size_t>(k)] = static_cast<double>(m(0, k * n + best));
  }
}

template <class S>
final_state run_soft(const options& o, const machine::assembled_program& assembled,
                     const machine::machine_inputs& inputs,
                     const machine::soft_interpreter<S>& interpreter) {
  const auto& shape = o.shape;
  const machine::soft_program<S> program =
      o.sharpness ? machine::softmax_program(machine::compile_logits<S>(assembled, shape, static_cast<S>(*o.sharpness)))
                  : machine::compile<S>(assembled, shape);
  machine::soft_state<S> state = machine::initial_soft_state<S>(shape, assembled.entry, inputs);
  std::FILE* trace = o.json ? stderr : stdout;
  final_state f;
  for (std::int64_t t = 1; t <= shape.steps; ++t) {
    if (state.halted[0] == S(1)) break;
    // halt_step: the first step whose fetched instruction has f_HALT >= 0.5 (ISA.md, ncl-run).
    if (!f.halt_step && machine::fetch_halt_probability(state, program)[0] >= S(0.5)) f.halt_step = t;
    index line = 0;
    for (index l = 1; l < shape.lines; ++l) {
      if (state.counter(0, l) > state.counter(0, line)) line = l;
    }
    const double p_line = static_cast<double>(state.counter(0, line));
    interpreter.step(state, program);
    f.steps = t;
    if (o.trace) {
      const machine::decoded_line d = machine::decode_line(program, line);
      decode_blocks(f.registers, f.register_confidence, state.registers, shape.registers, shape.n);
      print_trace_line(trace, t, line, p_line, machine::format_instruction(d.inst, shape), d.confidence,
                       f.registers, f.register_confidence, shape);
    }
  }
  decode_blocks(f.registers, f.register_confidence, state.registers, shape.registers, shape.n);
  decode_blocks(f.memory, f.memory_confidence, state.memory, shape.memory, shape.n);
  f.halted = static_cast<double>(state.halted[0]);
  index pc = 0;
  for (index l = 1; l < shape.lines; ++l) {
    if (state.counter(0, l) > state.counter(0, pc)) pc = l;
  }
  f.pc = pc;
  return f;
}

void print_result(const options& o, const final_state& f) {
  if (o.json) {
    nlohmann::ordered_json j;  // keys in ISA.md's order
    j["registers"] = f.registers;
    j["register_confidence"] = f.register_confidence;
    j["memory"] = f.memory;
    j["memory_confidence"] = f.memory_confidence;
    j["halted"] = f.halted;
    j["halt_step"] = f.halt_step ? nlohmann::ordered_json(*f.halt_step) : nlohmann::ordered_json(nullptr);
    j["pc"] = f.pc;
    std::cout << j.dump() << "\n";
    return;
  }
  std::printf("%s machine: %lld steps, halted %.3f", o.reference ? "reference" : "soft",
              static_cast<long long>(f.steps), f.halted);
  if (f.halt_step) std::printf(" (HALT fetched at step %lld)", static_cast<long long>(*f.halt_step));
  std::printf(", pc %lld\n", static_cast<long long>(f.pc));
  for (std::size_t r = 0; r < f.registers.size(); ++r) {
    std::printf("  %-4s = %3lld  (p=%.3f)\n", machine::register_name(static_cast<int>(r), o.shape).c_str(),
                static_cast<long long>(f.registers[r]), f.register_confidence[r]);
  }
  const double least = f.memory_confidence.empty()
                           ? 1.0
                           : *std::min_element(f.memory_confidence.begin(), f.memory_confidence.end());
  std::printf("  memory (least confidence %.3f):", least);
  for (std::size_t m = 0; m < f.memory.size(); ++m) {
    if (m % 16 == 0) std::printf("\n   [%3zu]", m);
    std::printf(" %3lld", static_cast<long long>(f.memory[m]));
  }
  std::printf("\n");
}

int run(int argc, char** argv) {
  options o;
  machine::assembled_program program;
  machine::machine_inputs inputs;
  std::optional<machine::soft_interpreter<double>> interpreter;
  try {
    o = parse_options(argc, argv);
    program = machine::assemble_files(o.files, o.shape, o.entry);
    inputs = parse_inputs(o);
    const ncl::alu::backend backend = ncl::alu::backend_from_name(o.alu);
    const machine::control_mode control =
        o.control == "mean_field" ? machine::control_mode::mean_field : machine::control_mode::per_line;
    if (!o.reference) interpreter.emplace(o.shape, backend, control);
  } catch (const usage_error& e) {
    std::fprintf(stderr, "ncl-run: %s\n%s", e.what(), usage_text);
    return 2;
  } catch (const ncl::parse_error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  } catch (const ncl::error& e) {  // unreadable files, bad backends or shapes for a backend
    std::fprintf(stderr, "ncl-run: %s\n", e.what());
    return 2;
  }
  try {
    const final_state f = o.reference ? run_reference(o, program, inputs)
                                      : run_soft<double>(o, program, inputs, *interpreter);
    print_result(o, f);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ncl-run: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return example::guarded_main("ncl-run", [&] { return run(argc, argv); });
}
