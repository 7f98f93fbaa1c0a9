// The soft interpreter's API: run, step and unroll agree; early stop once every element has
// halted (and backward over the shorter tape); a batch of per-element programs equals the
// shared program; the two control modes on a soft loop (ISA.md step 5); bad input errors;
// when the machine and the ALU use threads.
#include <catch2/catch.hpp>

#include <cmath>

#include <algorithm>
#include <string>
#include <vector>

#include "ncl/core/parallel.hpp"
#include "ncl/encoding/one_hot.hpp"
#include "ncl/machine/assembler.hpp"
#include "ncl/machine/interpreter_cache.hpp"    // tape, gradients, the one-pass kernels' buffers
#include "ncl/machine/interpreter_control.hpp"  // per-line and mean-field control (both modes below)
#include "ncl/machine/interpreter_step.hpp"     // one step forward and backward
#include "ncl/machine/program.hpp"
#include "ncl/machine/reference.hpp"
#include "soft_test_util.hpp"


namespace {

using ncl::alu::backend;
using ncl::machine::control_mode;
using ncl::machine::machine_shape;
using ncl::machine::soft_interpreter;
using ncl::machine::soft_program;
using ncl::machine::soft_state;

const char* const counting_loop = R"(
        SET  r0, 12
        SET  r1, 0
loop:   JZ   r0, done
        INC  r1, r1
        DEC  r0, r0
        JMP  loop
done:   HALT
)";

machine_shape small_shape() {
  machine_shape s;
  s.n = 16;
  s.registers = 4;
  s.memory = 8;
  s.lines = 16;
  return s;
}

template <class S>
std::vector<soft_program<S>> sharp_programs(const machine_shape& shape, int count, S sharpness,
                                            std::uint64_t seed) {
  ncl::rng random(seed);
  std::vector<soft_program<S>> out;
  for (int p = 0; p < count; ++p) {
    ncl::machine::assembled_program program;
    for (const auto& in : soft_test::random_program(random, shape, true)) {
      program.lines.push_back({in.op, static_cast<int>(in.dst), static_cast<int>(in.a),
                               static_cast<int>(in.b), in.imm});
    }
    program.source.resize(program.lines.size());
    out.push_back(ncl::machine::softmax_program(
        ncl::machine::compile_logits<S>(program, shape, sharpness)));
  }
  return out;
}

bool same(const soft_state<double>& x, const soft_state<double>& y, double tolerance) {
  if (x.halted.size() != y.halted.size()) return false;
  for (std::size_t b = 0; b < x.halted.size(); ++b) {
    if (std::abs(x.halted[b] - y.halted[b]) > tolerance) return false;
  }
  return x.registers.isApprox(y.registers, tolerance) && x.memory.isApprox(y.memory, tolerance) &&
         x.counter.isApprox(y.counter, tolerance);
}

}  // namespace

TEST_CASE("run, repeated step and unroll_forward reach the same state", "[machine_soft][unroll]") {
  const machine_shape shape = small_shape();
  const auto programs = sharp_programs<double>(shape, 1, 4.0, 5);
  for (control_mode control : {control_mode::per_line, control_mode::mean_field}) {
    const soft_interpreter<double> machine(shape, backend::table, control);
    auto start = ncl::machine::initial_state<double>(shape, 3);
    ncl::machine::set_register(start, shape, 1, 0, 7);
    ncl::machine::set_memory(start, shape, 2, 3, 9);
    auto stepped = start;
    for (int t = 0; t < 10; ++t) machine.step(stepped, programs[0]);
    auto ran = start;
    CHECK(machine.run(ran, programs[0], 10) == 10);
    ncl::machine::machine_tape<double> tape;
    machine.unroll_forward(tape, start, programs[0], 10);
    CHECK(tape.steps == 10);
    // One step runs element by element, a 10-step run on the lane path (per-line control):
    // the same sums in another order. run and unroll_forward take the same path.
    CHECK(same(stepped, ran, 1e-13));
    CHECK(same(ran, tape.final_state(), 0.0));
    CHECK(same(start, tape.initial_state(), 0.0));
    // The soft state stays a set of distributions.
    CHECK(stepped.counter.rowwise().sum().isApproxToConstant(1.0, 1e-12));
  }
}

TEST_CASE("unrolls stop once every element has halted, and backward handles the shorter tape",
          "[machine_soft][unroll]") {
  machine_shape shape;  // n = 32
  const auto program = ncl::machine::assemble_files(
      {std::string(NCL_SOURCE_DIR) + "/examples/programs/factorial.s"}, shape);
  const ncl::machine::reference_machine reference(program, shape);
  const auto soft = ncl::machine::compile<double>(program, shape);
  const soft_interpreter<double> machine(shape);
  auto start = ncl::machine::initial_state<double>(shape, 2);
  ncl::machine::set_register(start, shape, 0, 0, 4);
  ncl::machine::set_register(start, shape, 1, 0, 2);
  const auto slow = reference.run(reference.initial_state({{4, 0, 0, 0, 0, 0, 0, 0}, {}}), 500);
  const auto fast = reference.run(reference.initial_state({{2, 0, 0, 0, 0, 0, 0, 0}, {}}), 500);
  REQUIRE(slow.halt_step.has_value());
  REQUIRE(fast.halt_step.has_value());
  REQUIRE(*fast.halt_step < *slow.halt_step);

  auto ran = start;
  CHECK(machine.run(ran, soft, 500) == *slow.halt_step);  // waits for the slower element
  ncl::machine::machine_tape<double> tape;
  machine.unroll_forward(tape, start, soft, 500);
  CHECK(tape.steps == *slow.halt_step);
  CHECK(same(ran, tape.final_state(), 0.0));
  CHECK(ran.halted == std::vector<double>{1.0, 1.0});

  // Threaded, one slice per element: the thread whose element halts first waits at each
  // step for the other's, and both stop at the slower element's halt; past the 64-step
  // blocks the buffers are sized in, a run that has not halted goes on to its last step.
  soft_interpreter<double> sliced(shape);
  sliced.set_slices(2);
  auto sliced_ran = start;
  CHECK(sliced.run(sliced_ran, soft, 500) == *slow.halt_step);
  CHECK(same(ran, sliced_ran, 0.0));
  ncl::machine::machine_tape<double> sliced_tape;
  sliced.unroll_forward(sliced_tape, start, soft, 500);
  CHECK(sliced_tape.steps == *slow.halt_step);
  CHECK(same(ran, sliced_tape.final_state(), 0.0));
  for (const std::int64_t steps : {std::int64_t{3}, *fast.halt_step, *slow.halt_step - 1}) {
    auto serial_state = start, threaded_state = start;
    CHECK(machine.run(serial_state, soft, steps) == steps);
    CHECK(sliced.run(threaded_state, soft, steps) == steps);
    CHECK(same(serial_state, threaded_state, 0.0));
  }
  // r0 counted down to 0, 3 steps a round: from 30 and 25, more than 64 steps.
  const auto count_down = ncl::machine::assemble(
      "loop: JZ r0, done\n DEC r0, r0\n JMP loop\ndone: HALT\n", shape);
  const auto soft_count_down = ncl::machine::compile<double>(count_down, shape);
  const ncl::machine::reference_machine count_reference(count_down, shape);
  auto long_start = ncl::machine::initial_state<double>(shape, 2);
  ncl::machine::set_register(long_start, shape, 0, 0, 30);
  ncl::machine::set_register(long_start, shape, 1, 0, 25);
  const auto longest =
      count_reference.run(count_reference.initial_state({{30, 0, 0, 0, 0, 0, 0, 0}, {}}), 500);
  REQUIRE(longest.halt_step.has_value());
  REQUIRE(*longest.halt_step > 64);
  auto long_serial = long_start, long_threaded = long_start;
  CHECK(machine.run(long_serial, soft_count_down, 500) == *longest.halt_step);
  CHECK(sliced.run(long_threaded, soft_count_down, 500) == *longest.halt_step);
  CHECK(same(long_serial, long_threaded, 0.0));
  for (const std::int64_t steps : {std::int64_t{64}, std::int64_t{65}, *longest.halt_step - 1}) {
    ncl::machine::machine_tape<double> serial_tape, threaded_tape;
    machine.unroll_forward(serial_tape, long_start, soft_count_down, steps);
    sliced.unroll_forward(threaded_tape, long_start, soft_count_down, steps);
    CHECK(threaded_tape.steps == steps);
    CHECK(same(serial_tape.final_state(), threaded_tape.final_state(), 0.0));
  }

  // Backward over the early-stopped tape is backward over exactly that many steps.
  auto dfinal = ncl::machine::zero_state<double>(shape, 2);
  ncl::rng random(3);
  for (auto* m : {&dfinal.registers, &dfinal.memory, &dfinal.counter}) {
    for (ncl::index i = 0; i < m->size(); ++i) m->data()[i] = random.normal();
  }
  dfinal.halted = {0.5, -1.5};
  auto grads = ncl::machine::machine_gradients<double>::zeros(shape, 2, 1);
  machine.unroll_backward(grads, tape, dfinal);
  ncl::machine::machine_tape<double> exact;
  machine.unroll_forward(exact, start, soft, *slow.halt_step);
  auto expected = ncl::machine::machine_gradients<double>::zeros(shape, 2, 1);
  machine.unroll_backward(expected, exact, dfinal);
  CHECK(grads.programs[0].op == expected.programs[0].op);
  CHECK(grads.programs[0].imm == expected.programs[0].imm);
  CHECK(grads.initial.registers == expected.initial.registers);
  CHECK(grads.programs[0].op.cwiseAbs().sum() > 0);
  // Backward adds: a second call doubles the buffers.
  machine.unroll_backward(grads, tape, dfinal);
  CHECK(grads.programs[0].a.isApprox(2 * expected.programs[0].a, 1e-15));
}

TEST_CASE("per-element copies of one program equal the shared program", "[machine_soft][unroll]") {
  const machine_shape shape = small_shape();
  const ncl::index B = 3;
  const auto shared = sharp_programs<double>(shape, 1, 3.0, 9);
  const std::vector<soft_program<double>> copies(B, shared[0]);
  for (control_mode control : {control_mode::per_line, control_mode::mean_field}) {
    const soft_interpreter<double> machine(shape, backend::table, control);
    auto start = ncl::machine::initial_state<double>(shape, B);
    for (ncl::index b = 0; b < B; ++b) ncl::machine::set_register(start, shape, b, 1, b + 2);
    ncl::machine::machine_tape<double> one, many;
    machine.unroll_forward(one, start, shared[0], 8);
    machine.unroll_forward(many, start, std::span<const soft_program<double>>(copies), 8);
    CHECK(same(one.final_state(), many.final_state(), 1e-13));

    auto dfinal = ncl::machine::zero_state<double>(shape, B);
    ncl::rng random(4);  // random: a constant would see only the rows' fixed sums
    for (auto* m : {&dfinal.registers, &dfinal.memory, &dfinal.counter}) {
      for (ncl::index i = 0; i < m->size(); ++i) m->data()[i] = random.normal();
    }
    auto g_one = ncl::machine::machine_gradients<double>::zeros(shape, B, 1);
    auto g_many = ncl::machine::machine_gradients<double>::zeros(shape, B, B);
    machine.unroll_backward(g_one, one, dfinal);
    machine.unroll_backward(g_many, many, dfinal);
    ncl::matrix<double> op_sum = ncl::matrix<double>::Zero(shape.lines, 23);
    ncl::matrix<double> imm_sum = ncl::matrix<double>::Zero(shape.lines, shape.n);
    for (const auto& g : g_many.programs) {
      op_sum += g.op;
      imm_sum += g.imm;
    }
    CHECK(op_sum.isApprox(g_one.programs[0].op, 1e-12));
    CHECK(imm_sum.isApprox(g_one.programs[0].imm, 1e-12));
    CHECK(op_sum.cwiseAbs().maxCoeff() > 1e-3);
    CHECK(g_many.initial.registers.isApprox(g_one.initial.registers, 1e-12));

    // Split into thread slices, the shared program's per-slice gradients are summed.
    soft_interpreter<double> sliced(shape, backend::table, control);
    sliced.set_slices(2);
    ncl::machine::machine_tape<double> split;
    sliced.unroll_forward(split, start, shared[0], 8);
    CHECK(same(one.final_state(), split.final_state(), 1e-13));
    auto g_split = ncl::machine::machine_gradients<double>::zeros(shape, B, 1);
    sliced.unroll_backward(g_split, split, dfinal);
    CHECK(g_split.programs[0].op.isApprox(g_one.programs[0].op, 1e-12));
    CHECK(g_split.programs[0].a.isApprox(g_one.programs[0].a, 1e-12));
    CHECK(g_split.initial.memory.isApprox(g_one.initial.memory, 1e-12));

    // Frozen programs (no program buffers given): the same initial-state gradients, from
    // one program, from per-element copies and from threaded slices.
    const auto frozen_equals = [&](const soft_interpreter<double>& m,
                                   const ncl::machine::machine_tape<double>& tape,
                                   const ncl::machine::machine_gradients<double>& full) {
      auto frozen = ncl::machine::machine_gradients<double>::zeros(shape, B, 0);
      REQUIRE(frozen.programs.empty());
      m.unroll_backward(frozen, tape, dfinal);
      CHECK(frozen.initial.registers == full.initial.registers);
      CHECK(frozen.initial.memory == full.initial.memory);
      CHECK(frozen.initial.counter == full.initial.counter);
      CHECK(frozen.initial.counter.cwiseAbs().maxCoeff() > 1e-3);
    };
    frozen_equals(machine, one, g_one);
    frozen_equals(machine, many, g_many);
    frozen_equals(sliced, split, g_split);
  }
}

TEST_CASE("per-line control ends a soft 12-iteration loop right, mean field does not",
          "[machine_soft][unroll]") {
  machine_shape shape;  // ISA.md step 5's measurement: fields softmax(12 * one-hot)
  const auto program = ncl::machine::assemble(counting_loop, shape);
  const auto soft =
      ncl::machine::softmax_program(ncl::machine::compile_logits<double>(program, shape, 12.0));
  auto result = [&](control_mode control) {
    const soft_interpreter<double> machine(shape, backend::table, control);
    auto state = ncl::machine::initial_state<double>(shape, 1);
    machine.run(state, soft, 80);
    const ncl::matrix<double> r1 = state.registers.block(0, shape.n, 1, shape.n);
    return std::pair{ncl::encoding::one_hot_decode(r1).values[0], state.halted[0]};
  };
  const auto [per_line_r1, per_line_h] = result(control_mode::per_line);
  const auto [mean_field_r1, mean_field_h] = result(control_mode::mean_field);
  CHECK(per_line_r1 == 12);
  CHECK(per_line_h > 0.99);
  CHECK(mean_field_r1 != 12);
  CHECK(mean_field_h < 0.9);
}

TEST_CASE("soft interpreter rejects bad shapes and arguments", "[machine_soft][errors]") {
  const machine_shape shape = small_shape();
  const soft_interpreter<float> machine(shape);
  const auto program = sharp_programs<float>(shape, 1, 5.0f, 1)[0];
  auto state = ncl::machine::initial_state<float>(shape, 2);

  auto bad_state = state;
  bad_state.registers.resize(2, 3);
  CHECK_THROWS_AS(machine.step(bad_state, program), ncl::shape_error);
  CHECK_THROWS_WITH(machine.step(bad_state, program), Catch::Contains("state.registers"));
  bad_state = state;
  bad_state.halted.pop_back();
  CHECK_THROWS_AS(machine.run(bad_state, program, 3), ncl::shape_error);

  auto bad_program = program;
  bad_program.imm.resize(shape.lines, shape.n + 1);
  CHECK_THROWS_WITH(machine.step(state, bad_program), Catch::Contains("programs[0].imm"));
  const std::vector<soft_program<float>> three(3, program);
  CHECK_THROWS_AS(machine.step(state, std::span<const soft_program<float>>(three)),
                  ncl::shape_error);
  CHECK_THROWS_AS(machine.run(state, program, -1), ncl::value_error);

  ncl::machine::machine_tape<float> tape;
  auto grads = ncl::machine::machine_gradients<float>::zeros(shape, 2, 1);
  CHECK_THROWS_AS(machine.unroll_backward(grads, tape, state), ncl::value_error);
  machine.unroll_forward(tape, state, program, 2);
  auto wrong_count = ncl::machine::machine_gradients<float>::zeros(shape, 2, 2);
  CHECK_THROWS_AS(machine.unroll_backward(wrong_count, tape, state), ncl::shape_error);
  CHECK_THROWS_WITH(machine.unroll_backward(wrong_count, tape, state),
                    Catch::Contains("grads.programs has 2 programs, the unroll ran 1"));
  auto wrong_batch = ncl::machine::machine_gradients<float>::zeros(shape, 3, 1);
  CHECK_THROWS_AS(machine.unroll_backward(wrong_batch, tape, state), ncl::shape_error);

  machine_shape broken = shape;
  broken.lines = shape.n + 1;  // L <= n
  CHECK_THROWS_AS(soft_interpreter<float>(broken), ncl::value_error);
  machine_shape odd = shape;
  odd.n = 12;
  odd.lines = 12;
  CHECK_THROWS_AS(soft_interpreter<float>(odd, backend::circuit), ncl::value_error);
  CHECK_THROWS_AS(ncl::machine::set_register(state, shape, 0, 0, shape.n), ncl::value_error);
  CHECK_THROWS_AS(ncl::machine::initial_state<float>(shape, 1, shape.lines), ncl::value_error);
  CHECK(ncl::machine::control_mode_from_name("mean_field") == control_mode::mean_field);
  CHECK_THROWS_AS(ncl::machine::control_mode_from_name("both"), ncl::value_error);
}

TEST_CASE("fused and tiled kernels equal their plain references", "[machine_soft][kernels]") {
  ncl::rng random(11);
  for (ncl::index n : {5, 16, 37, 64, 80}) {
    const ncl::index M = std::min<ncl::index>(n, 33);
    auto fill = [&](ncl::index size) {
      std::vector<double> x(static_cast<std::size_t>(size));
      for (auto& value : x) value = random.uniform(-1.0, 1.0);
      return x;
    };
    const auto mem = fill(M * n), dnext = fill(M * n), e = fill(M), v = fill(n), d_read = fill(n);
    const double p = 0.3, read_weight = 0.7;
    std::vector<double> dmem_ref(mem.size(), 0.1), de_ref(e.size(), 0.2), dv_ref(v.size(), 0.3);
    double dp_ref = 0.4;
    auto dmem = dmem_ref, de = de_ref, dv = dv_ref;
    double dp = dp_ref;
    ncl::machine::memory_write_backward(dmem_ref.data(), de_ref.data(), &dp_ref, dv_ref.data(),
                                        dnext.data(), mem.data(), e.data(), p, v.data(), M, n);
    ncl::machine::memory_read_backward(dmem_ref.data(), de_ref.data(), d_read.data(), read_weight,
                                       mem.data(), e.data(), M, n);
    ncl::machine::memory_backward(dmem.data(), de.data(), &dp, dv.data(), dnext.data(),
                                  d_read.data(), read_weight, mem.data(), e.data(), p, v.data(), M,
                                  n);
    INFO("n = " << n);
    for (std::size_t i = 0; i < dmem.size(); ++i) REQUIRE(dmem[i] == Approx(dmem_ref[i]));
    for (std::size_t i = 0; i < de.size(); ++i) REQUIRE(de[i] == Approx(de_ref[i]));
    for (std::size_t i = 0; i < dv.size(); ++i) REQUIRE(dv[i] == Approx(dv_ref[i]));
    CHECK(dp == Approx(dp_ref));

    std::vector<double> mixed(static_cast<std::size_t>(n));
    ncl::machine::mix_rows(mixed.data(), mem.data(), e.data(), M, n);
    for (ncl::index j = 0; j < n; ++j) {
      double plain = 0;
      for (ncl::index m = 0; m < M; ++m) plain += e[static_cast<std::size_t>(m)] * mem[static_cast<std::size_t>(m * n + j)];
      REQUIRE(mixed[static_cast<std::size_t>(j)] == Approx(plain).margin(1e-14));
    }
    double plain_dot = 0;
    for (ncl::index j = 0; j < n; ++j) plain_dot += v[static_cast<std::size_t>(j)] * d_read[static_cast<std::size_t>(j)];
    CHECK(ncl::machine::detail::dot(v.data(), d_read.data(), n) == Approx(plain_dot).margin(1e-14));
  }
}

TEST_CASE("one-pass forward and backward kernels equal plain loops", "[machine_soft][kernels]") {
  ncl::rng random(12);
  auto fill = [&](ncl::index size) {
    std::vector<double> x(static_cast<std::size_t>(size));
    for (auto& value : x) value = random.uniform(-1.0, 1.0);
    return x;
  };
  auto at = [](const std::vector<double>& x, ncl::index i) { return x[static_cast<std::size_t>(i)]; };
  for (ncl::index n : {5, 16, 37, 48, 64, 80}) {
    INFO("n = " << n);
    const ncl::index M = std::min<ncl::index>(n, 33), R = 6, L = 7, W = 32;
    const double p = 0.3, w = 0.6;

    // memory_forward = memory_read_forward + memory_write_forward.
    const auto mem = fill(M * n), e = fill(M), v = fill(n);
    std::vector<double> read(static_cast<std::size_t>(n)), next(mem.size());
    std::vector<double> read_ref = read, next_ref = next;
    ncl::machine::memory_forward(read.data(), next.data(), mem.data(), e.data(), p, v.data(), M, n);
    ncl::machine::memory_read_forward(read_ref.data(), mem.data(), e.data(), M, n);
    ncl::machine::memory_write_forward(next_ref.data(), mem.data(), e.data(), p, v.data(), M, n);
    for (std::size_t i = 0; i < read.size(); ++i) REQUIRE(read[i] == Approx(read_ref[i]).margin(1e-14));
    for (std::size_t i = 0; i < next.size(); ++i) REQUIRE(next[i] == Approx(next_ref[i]).margin(1e-14));

    // memory_backward_assign writes dmem; memory_backward adds into it.
    const auto dnext = fill(M * n), d_read = fill(n);
    std::vector<double> dmem(mem.size(), 5.0), dmem_ref(mem.size(), 0.0), de(e.size(), 0.1),
        de_ref = de, dv(v.size(), 0.2), dv_ref = dv;
    double dp = 0.3, dp_ref = 0.3;
    ncl::machine::memory_backward_assign(dmem.data(), de.data(), &dp, dv.data(), dnext.data(),
                                         d_read.data(), w, mem.data(), e.data(), p, v.data(), M, n);
    ncl::machine::memory_backward(dmem_ref.data(), de_ref.data(), &dp_ref, dv_ref.data(),
                                  dnext.data(), d_read.data(), w, mem.data(), e.data(), p, v.data(),
                                  M, n);
    for (std::size_t i = 0; i < dmem.size(); ++i) REQUIRE(dmem[i] == Approx(dmem_ref[i]).margin(1e-14));
    for (std::size_t i = 0; i < de.size(); ++i) REQUIRE(de[i] == Approx(de_ref[i]));
    for (std::size_t i = 0; i < dv.size(); ++i) REQUIRE(dv[i] == Approx(dv_ref[i]));
    CHECK(dp == Approx(dp_ref));

    // mix_rows_strided: columns [0, n) of rows W + n apart.
    const ncl::index stride = W + n;
    const auto wide = fill(L * stride), weights = fill(L);
    std::vector<double> mixed(static_cast<std::size_t>(n));
    ncl::machine::mix_rows_strided(mixed.data(), wide.data(), stride, weights.data(), L, n);
    for (ncl::index j = 0; j < n; ++j) {
      double plain = 0;
      for (ncl::index l = 0; l < L; ++l) plain += at(weights, l) * at(wide, l * stride + j);
      REQUIRE(at(mixed, j) == Approx(plain).margin(1e-14));
    }

    // register_reads_backward = register_read_backward twice.
    const auto regs = fill(R * n), alpha = fill(R), beta = fill(R), du = fill(n), dv2 = fill(n);
    std::vector<double> dregs(regs.size(), 0.1), dalpha(alpha.size(), 0.2), dbeta(beta.size(), 0.3);
    auto dregs_ref = dregs, dalpha_ref = dalpha, dbeta_ref = dbeta;
    ncl::machine::register_reads_backward(dregs.data(), dalpha.data(), dbeta.data(), du.data(),
                                          dv2.data(), regs.data(), alpha.data(), beta.data(), R, n);
    ncl::machine::register_read_backward(dregs_ref.data(), dalpha_ref.data(), du.data(),
                                         regs.data(), alpha.data(), R, n);
    ncl::machine::register_read_backward(dregs_ref.data(), dbeta_ref.data(), dv2.data(),
                                         regs.data(), beta.data(), R, n);
    for (std::size_t i = 0; i < dregs.size(); ++i) REQUIRE(dregs[i] == Approx(dregs_ref[i]));
    for (ncl::index r = 0; r < R; ++r) {
      REQUIRE(at(dalpha, r) == Approx(at(dalpha_ref, r)));
      REQUIRE(at(dbeta, r) == Approx(at(dbeta_ref, r)));
    }

    // register_write_backward against its plain loops: next[r] = (1 - w d_r) regs[r] + d_r o.
    const auto d = fill(R), o = fill(n), g = fill(R * n);
    std::vector<double> dregs_w(regs.size(), 0.1), dd(d.size(), 0.2), dout(o.size(), 0.3);
    auto dregs_w_ref = dregs_w, dd_ref = dd, dout_ref = dout;
    double dw = 0.4, dw_ref = 0.4;
    ncl::machine::register_write_backward(dregs_w.data(), dd.data(), &dw, dout.data(), g.data(),
                                          regs.data(), d.data(), w, o.data(), R, n);
    for (ncl::index r = 0; r < R; ++r) {
      for (ncl::index j = 0; j < n; ++j) {
        const double gj = at(g, r * n + j);
        dregs_w_ref[static_cast<std::size_t>(r * n + j)] += (1 - w * at(d, r)) * gj;
        dd_ref[static_cast<std::size_t>(r)] += (at(o, j) - w * at(regs, r * n + j)) * gj;
        dw_ref -= at(d, r) * at(regs, r * n + j) * gj;
        dout_ref[static_cast<std::size_t>(j)] += at(d, r) * gj;
      }
    }
    for (std::size_t i = 0; i < dregs_w.size(); ++i) REQUIRE(dregs_w[i] == Approx(dregs_w_ref[i]));
    for (std::size_t i = 0; i < dd.size(); ++i) REQUIRE(dd[i] == Approx(dd_ref[i]));
    for (std::size_t i = 0; i < dout.size(); ++i) REQUIRE(dout[i] == Approx(dout_ref[i]));
    CHECK(dw == Approx(dw_ref));
  }
}

TEST_CASE("threads only outside every parallel region, even an inactive one",
          "[machine_soft][unroll]") {
  CHECK_FALSE(ncl::detail::threaded(false));
#if defined(_OPENMP)
  CHECK(ncl::detail::threaded(true));
  bool inside_inactive = true, inside_active = true;
#pragma omp parallel if (false)
  inside_inactive = ncl::detail::threaded(true);  // a team of one: a nested region would be active
#pragma omp parallel num_threads(2)
  {
#pragma omp single
    inside_active = ncl::detail::threaded(true);
  }
  CHECK_FALSE(inside_inactive);
  CHECK_FALSE(inside_active);
#else
  CHECK_FALSE(ncl::detail::threaded(true));
#endif
}
