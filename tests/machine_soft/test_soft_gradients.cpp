// The hand-written backward through time of the soft machine against central differences
// (ncl::gradcheck, double): gradients with respect to the five program fields, the initial
// registers, memory and counter, through T = 6 steps, for both control modes and every ALU
// backend, with one shared program and with one program per element.
#include <catch2/catch.hpp>

#include <span>
#include <vector>

#include "ncl/core/gradcheck.hpp"
#include "ncl/core/softmax.hpp"
#include "soft_test_util.hpp"

namespace {

using ncl::alu::backend;
using ncl::machine::control_mode;
using ncl::machine::machine_shape;
using ncl::machine::soft_program;
using ncl::machine::soft_state;

/// Each row of m (rows, cols) a random distribution softmax(scale * normal).
void random_rows(ncl::matrix<double>& m, ncl::index rows, ncl::index cols, double scale,
                 ncl::rng& random) {
  m.resize(rows, cols);
  for (ncl::index r = 0; r < rows; ++r) {
    double total = 0;
    for (ncl::index c = 0; c < cols; ++c) {
      m(r, c) = std::exp(scale * random.normal());
      total += m(r, c);
    }
    m.row(r) /= total;
  }
}

soft_program<double> random_soft_program(const machine_shape& shape, ncl::rng& random) {
  soft_program<double> p;
  random_rows(p.op, shape.lines, 23, 1.5, random);
  random_rows(p.dst, shape.lines, shape.registers, 1.5, random);
  random_rows(p.a, shape.lines, shape.registers, 1.5, random);
  random_rows(p.b, shape.lines, shape.registers, 1.5, random);
  random_rows(p.imm, shape.lines, shape.n, 1.5, random);
  return p;
}

/// Register, memory and counter rows of every element random distributions.
soft_state<double> random_soft_state(const machine_shape& shape, ncl::index batch,
                                     ncl::rng& random) {
  auto s = ncl::machine::initial_state<double>(shape, batch);
  ncl::matrix<double> rows;
  random_rows(rows, batch * shape.registers, shape.n, 1.5, random);
  s.registers = Eigen::Map<ncl::matrix<double>>(rows.data(), batch, shape.registers * shape.n);
  random_rows(rows, batch * shape.memory, shape.n, 1.5, random);
  s.memory = Eigen::Map<ncl::matrix<double>>(rows.data(), batch, shape.memory * shape.n);
  random_rows(s.counter, batch, shape.lines, 1.0, random);
  return s;
}

std::span<double> span_of(ncl::matrix<double>& m) {
  return {m.data(), static_cast<std::size_t>(m.size())};
}

std::vector<double> flatten(const soft_state<double>& s) {
  std::vector<double> out;
  for (const auto* m : {&s.registers, &s.memory, &s.counter}) {
    out.insert(out.end(), m->data(), m->data() + m->size());
  }
  out.insert(out.end(), s.halted.begin(), s.halted.end());
  return out;
}

soft_state<double> unflatten(std::span<const double> flat, const soft_state<double>& like) {
  soft_state<double> s = like;
  std::size_t at = 0;
  for (auto* m : {&s.registers, &s.memory, &s.counter}) {
    std::copy(flat.begin() + static_cast<std::ptrdiff_t>(at),
              flat.begin() + static_cast<std::ptrdiff_t>(at + static_cast<std::size_t>(m->size())),
              m->data());
    at += static_cast<std::size_t>(m->size());
  }
  std::copy(flat.begin() + static_cast<std::ptrdiff_t>(at), flat.end(), s.halted.begin());
  return s;
}

std::vector<double> to_vector(const ncl::matrix<double>& m) {
  return {m.data(), m.data() + m.size()};
}

void check_gradients(backend alu, control_mode control, ncl::index batch, bool per_element,
                     std::uint64_t seed, ncl::index slices = 0) {
  machine_shape shape;
  shape.n = 8;
  shape.registers = 4;
  shape.memory = 8;
  shape.lines = 8;
  const std::int64_t T = 6;
  ncl::rng random(seed);
  const ncl::index count = per_element ? batch : 1;
  std::vector<soft_program<double>> programs;
  for (ncl::index p = 0; p < count; ++p) programs.push_back(random_soft_program(shape, random));
  soft_state<double> initial = random_soft_state(shape, batch, random);

  ncl::machine::soft_interpreter<double> machine(shape, alu, control);
  machine.set_slices(slices, false);  // slices one after another: threads would only be slower here
  ncl::machine::machine_tape<double> tape;
  auto forward = [&] {
    machine.unroll_forward(tape, initial, std::span<const soft_program<double>>(programs), T);
    return flatten(tape.final_state());
  };
  auto backward = [&](std::span<const double> dout) {
    forward();
    REQUIRE(tape.steps == T);
    auto grads = ncl::machine::machine_gradients<double>::zeros(shape, batch, count);
    machine.unroll_backward(grads, tape, unflatten(dout, tape.final_state()));
    std::vector<std::vector<double>> out;
    for (auto& g : grads.programs) {
      for (const auto* m : {&g.op, &g.dst, &g.a, &g.b, &g.imm}) out.push_back(to_vector(*m));
    }
    out.push_back(to_vector(grads.initial.registers));
    out.push_back(to_vector(grads.initial.memory));
    out.push_back(to_vector(grads.initial.counter));
    return out;
  };
  std::vector<ncl::gradcheck_input> inputs;
  for (ncl::index p = 0; p < count; ++p) {
    auto& prog = programs[static_cast<std::size_t>(p)];
    const std::string tag = "program " + std::to_string(p) + " ";
    inputs.push_back({tag + "op", span_of(prog.op)});
    inputs.push_back({tag + "dst", span_of(prog.dst)});
    inputs.push_back({tag + "a", span_of(prog.a)});
    inputs.push_back({tag + "b", span_of(prog.b)});
    inputs.push_back({tag + "imm", span_of(prog.imm)});
  }
  inputs.push_back({"initial registers", span_of(initial.registers)});
  inputs.push_back({"initial memory", span_of(initial.memory)});
  inputs.push_back({"initial counter", span_of(initial.counter)});

  ncl::gradcheck_options options;
  options.rtol = 1e-5;
  options.atol = 1e-8;
  options.samples_per_input = per_element ? 12 : 24;
  options.min_checked = inputs.size() * options.samples_per_input / 2;
  options.seed = seed;
  const auto result = ncl::gradcheck(inputs, forward, backward, options);
  INFO("ALU " << ncl::alu::backend_name(alu) << ", control "
              << ncl::machine::control_mode_name(control) << ", B " << batch
              << (per_element ? ", per-element programs\n" : ", shared program\n")
              << result.report());
  CHECK(result.ok);
  CHECK(result.skipped_kinks == 0);
}

}  // namespace

TEST_CASE("soft machine gradients match finite differences, per-line control",
          "[machine_soft][gradient]") {
  for (backend alu : {backend::table, backend::dense_table, backend::circuit}) {
    check_gradients(alu, control_mode::per_line, 2, false, 101);
  }
  check_gradients(backend::table, control_mode::per_line, 3, true, 102);
  check_gradients(backend::table, control_mode::per_line, 3, false, 103, 2);  // thread slices
}

TEST_CASE("soft machine gradients match finite differences, mean-field control",
          "[machine_soft][gradient]") {
  for (backend alu : {backend::table, backend::dense_table, backend::circuit}) {
    check_gradients(alu, control_mode::mean_field, 2, false, 201);
  }
  check_gradients(backend::table, control_mode::mean_field, 3, true, 202);
  check_gradients(backend::table, control_mode::mean_field, 3, true, 203, 3);
}
