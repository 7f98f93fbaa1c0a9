// The soft register machine (ISA.md "One step", paper eq. 2-7): a batch of machine states
// run by one program shared by the batch or by one program per element, every step a
// differentiable function of the program fields, the registers, the memory and the counter.
//
//   soft_interpreter<float> machine(shape);                 // table ALU, per-line control
//   machine.step(state, program);                           // one ISA step, in place
//   machine.run(state, program, T);                         // T steps, early stop
//   machine_tape<double> tape;
//   machine.unroll_forward(tape, initial, program, T);      // records what backward needs
//   auto grads = machine_gradients<double>::zeros(shape, B, 1);
//   machine.unroll_backward(grads, tape, dfinal);           // adds d loss / d program, state
//
// One step, batched (B rows): the fetch (step 1) is c (B, L) x P (L, W) for the packed
// program P; the register reads, memory, value mixture and writes run per element; the ALU
// (alu.hpp) runs once on the whole batch; control (step 5) is interpreter_control.hpp.
// Backward is the forward read in reverse, and adds into its buffers.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "ncl/alu/alu.hpp"
#include "ncl/alu/opcode.hpp"
#include "ncl/core/error.hpp"
#include "ncl/core/tensor.hpp"
#include "ncl/machine/interpreter_cache.hpp"
#include "ncl/machine/interpreter_control.hpp"
#include "ncl/machine/memory.hpp"
#include "ncl/machine/registers.hpp"
#include "ncl/machine/shape.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace ncl::machine {

/// ISA.md step 5: per line (the default) or the paper's mean-field eq. 6 (an ablation).
enum class control_mode { per_line, mean_field };

inline std::string_view control_mode_name(control_mode mode) {
  return mode == control_mode::per_line ? "per_line" : "mean_field";
}

/// "per_line" or "mean_field" (also "per-line", "mean-field").
inline control_mode control_mode_from_name(std::string_view name) {
  if (name == "per_line" || name == "per-line") return control_mode::per_line;
  if (name == "mean_field" || name == "mean-field") return control_mode::mean_field;
  throw value_error(ncl::detail::concat("unknown control mode '", name,
                                        "'; choices: per_line, mean_field"));
}

/// The ISA's initial state for a batch: every register and memory cell one-hot on 0, the
/// counter one-hot on line `entry`, h = 0.
template <class S>
soft_state<S> initial_state(const machine_shape& shape, index batch, std::int64_t entry = 0) {
  shape.validate();
  if (batch < 1) throw value_error(ncl::detail::concat("initial_state: batch = ", batch, " < 1"));
  if (entry < 0 || entry >= shape.lines) {
    throw value_error(ncl::detail::concat("initial_state: entry line ", entry, " is outside [0, ",
                                          shape.lines, ")"));
  }
  soft_state<S> s = zero_state<S>(shape, batch);
  for (index b = 0; b < batch; ++b) {
    for (index r = 0; r < shape.registers; ++r) s.registers(b, r * shape.n) = S(1);
    for (index m = 0; m < shape.memory; ++m) s.memory(b, m * shape.n) = S(1);
    s.counter(b, entry) = S(1);
  }
  return s;
}

/// Sets register r of element b to the one-hot value `value`.
template <class S>
void set_register(soft_state<S>& state, const machine_shape& shape, index b, index r,
                  std::int64_t value) {
  if (b < 0 || b >= state.batch() || r < 0 || r >= shape.registers || value < 0 ||
      value >= shape.n) {
    throw value_error(ncl::detail::concat("set_register: element ", b, ", register ", r,
                                          ", value ", value, " out of range (B = ", state.batch(),
                                          ", R = ", shape.registers, ", n = ", shape.n, ")"));
  }
  auto row = state.registers.row(b).segment(r * shape.n, shape.n);
  row.setZero();
  row(value) = S(1);
}

/// Sets memory cell m of element b to the one-hot value `value`.
template <class S>
void set_memory(soft_state<S>& state, const machine_shape& shape, index b, index m,
                std::int64_t value) {
  if (b < 0 || b >= state.batch() || m < 0 || m >= shape.memory || value < 0 ||
      value >= shape.n) {
    throw value_error(ncl::detail::concat("set_memory: element ", b, ", cell ", m, ", value ",
                                          value, " out of range (B = ", state.batch(),
                                          ", M = ", shape.memory, ", n = ", shape.n, ")"));
  }
  auto row = state.memory.row(b).segment(m * shape.n, shape.n);
  row.setZero();
  row(value) = S(1);
}

/// True when every element's halting probability is exactly 1 (ISA.md step 6).
template <class S>
bool all_halted(const soft_state<S>& state) {
  return std::all_of(state.halted.begin(), state.halted.end(), [](S h) { return h == S(1); });
}

template <class S>
class soft_interpreter {
 public:
  explicit soft_interpreter(const machine_shape& shape,
                            alu::backend alu_backend = alu::backend::table,
                            control_mode control = control_mode::per_line)
      : shape_(validated(shape)), control_(control), alu_(shape.n, alu_backend) {
    layout_.R = shape_.registers;
    layout_.n = shape_.n;
  }

  /// Splits the batch into `count` slices (at most B), stepped by separate OpenMP threads
  /// when `threads`, else one after another; 0, the default, picks one slice per thread
  /// when the batch is big enough to pay for a fork and join per step.
  void set_slices(index count, bool threads = true) {
    if (count < 0) throw value_error(ncl::detail::concat("set_slices: count = ", count, " < 0"));
    slices_ = count;
    threaded_ = threads;
  }

  const machine_shape& shape() const { return shape_; }
  control_mode control() const { return control_; }
  alu::backend alu_backend() const { return alu_.kind(); }

  /// One ISA step in place for the whole batch; `programs` holds 1 program (shared) or B.
  void step(soft_state<S>& state, std::span<const soft_program<S>> programs) const {
    run(state, programs, 1);
  }
  void step(soft_state<S>& state, const soft_program<S>& program) const {
    step(state, std::span<const soft_program<S>>(&program, 1));
  }

  /// Up to `steps` steps in place, stopping once every element has halted; returns the
  /// number of steps run. Keeps no tape.
  std::int64_t run(soft_state<S>& state, std::span<const soft_program<S>> programs,
                   std::int64_t steps) const {
    check_state("soft_interpreter::run", "state", state, state.batch());
    check_steps("soft_interpreter::run", steps);
    detail::packed_programs<S> packed;
    pack(packed, programs, state.batch(), "soft_interpreter::run");
    auto slices = make_slices(state.batch());
    soft_state<S> next;
    step_cache<S> cache;
    for (std::int64_t t = 0; t < steps; ++t) {
      forward_all(next, cache, state, packed, slices);
      std::swap(state, next);
      if (all_halted(state)) return t + 1;
    }
    return steps;
  }
  std::int64_t run(soft_state<S>& state, const soft_program<S>& program,
                   std::int64_t steps) const {
    return run(state, std::span<const soft_program<S>>(&program, 1), steps);
  }

  /// Runs up to `steps` steps from `initial`, recording in `tape` the states, the caches
  /// and a copy of the programs that unroll_backward needs. Stops early once every element
  /// has halted (tape.steps says how many ran). A reused tape keeps its buffers.
  void unroll_forward(machine_tape<S>& tape, const soft_state<S>& initial,
                      std::span<const soft_program<S>> programs, std::int64_t steps) const {
    check_state("soft_interpreter::unroll_forward", "initial", initial, initial.batch());
    check_steps("soft_interpreter::unroll_forward", steps);
    pack(tape.programs, programs, initial.batch(), "soft_interpreter::unroll_forward");
    const auto count = static_cast<std::size_t>(steps);
    if (tape.states.size() < count + 1) tape.states.resize(count + 1);
    if (tape.caches.size() < count) tape.caches.resize(count);
    tape.states[0] = initial;
    tape.steps = 0;
    auto& slices = tape.workspace.slices;
    slices = make_slices(initial.batch());
    for (std::size_t t = 0; t < count; ++t) {
      forward_all(tape.states[t + 1], tape.caches[t], tape.states[t], tape.programs, slices);
      tape.steps = static_cast<std::int64_t>(t + 1);
      if (all_halted(tape.states[t + 1])) break;
    }
  }
  void unroll_forward(machine_tape<S>& tape, const soft_state<S>& initial,
                      const soft_program<S>& program, std::int64_t steps) const {
    unroll_forward(tape, initial, std::span<const soft_program<S>>(&program, 1), steps);
  }

  /// Backward through the tape's steps: given dfinal = d loss / d final state (registers,
  /// memory, counter, halted), adds d loss / d program fields into grads.programs (one per
  /// program of the unroll) and d loss / d initial registers, memory, counter into
  /// grads.initial.
  void unroll_backward(machine_gradients<S>& grads, const machine_tape<S>& tape,
                       const soft_state<S>& dfinal) const {
    const detail::packed_programs<S>& programs = tape.programs;
    const index B = programs.batch;
    if (tape.states.empty()) {
      throw value_error("soft_interpreter::unroll_backward: the tape holds no unroll");
    }
    check_state("soft_interpreter::unroll_backward", "dfinal", dfinal, B);
    check_state("soft_interpreter::unroll_backward", "grads.initial", grads.initial, B);
    if (static_cast<index>(grads.programs.size()) != programs.count()) {
      throw shape_error(ncl::detail::concat(
          "soft_interpreter::unroll_backward: grads.programs has ", grads.programs.size(),
          " programs, the unroll ran ", programs.count()));
    }
    for (const auto& g : grads.programs) {
      check_program("soft_interpreter::unroll_backward", "grads.programs", g);
    }
    auto& ws = tape.workspace;
    auto& slices = ws.slices;
    slices = make_slices(B);
    const index buffers = programs.shared() ? static_cast<index>(slices.size()) : programs.count();
    ws.d_packed.resize(static_cast<std::size_t>(buffers));
    for (auto& d : ws.d_packed) d.setZero(shape_.lines, layout_.width());
    prepare_backward(ws, B);
    soft_state<S>& dnext = tape.d_next;
    soft_state<S>& dstate = tape.d_state;
    dnext = dfinal;
    dstate.registers.resize(B, dfinal.registers.cols());
    dstate.memory.resize(B, dfinal.memory.cols());
    dstate.counter.resize(B, dfinal.counter.cols());
    dstate.halted.assign(static_cast<std::size_t>(B), S(0));  // h' does not depend on h
    const auto slice_count = static_cast<index>(slices.size());
    for (std::int64_t t = tape.steps - 1; t >= 0; --t) {
      const auto i = static_cast<std::size_t>(t);
      NCL_MACHINE_PARALLEL_FOR(threaded_ && slice_count > 1)
      for (index k = 0; k < slice_count; ++k) {
        auto& slice = slices[static_cast<std::size_t>(k)];
        dstate.registers.middleRows(slice.begin, slice.rows()).setZero();
        dstate.memory.middleRows(slice.begin, slice.rows()).setZero();
        dstate.counter.middleRows(slice.begin, slice.rows()).setZero();
        step_backward(dstate, ws, dnext, tape.caches[i], tape.states[i], programs, slice);
      }
      std::swap(dstate.registers, dnext.registers);
      std::swap(dstate.memory, dnext.memory);
      std::swap(dstate.counter, dnext.counter);
      std::fill(dnext.halted.begin(), dnext.halted.end(), S(0));
    }
    grads.initial.registers += dnext.registers;
    grads.initial.memory += dnext.memory;
    grads.initial.counter += dnext.counter;
    if (programs.shared()) {
      for (std::size_t k = 1; k < ws.d_packed.size(); ++k) ws.d_packed[0] += ws.d_packed[k];
    }
    for (index p = 0; p < programs.count(); ++p) {
      detail::unpack_add(grads.programs[static_cast<std::size_t>(p)],
                         ws.d_packed[static_cast<std::size_t>(p)], layout_);
    }
  }

 private:
  static const machine_shape& validated(const machine_shape& shape) {
    shape.validate();
    return shape;
  }

  static void check_steps(std::string_view op, std::int64_t steps) {
    if (steps < 0) throw value_error(ncl::detail::concat(op, ": steps = ", steps, " < 0"));
  }

  void check_state(std::string_view op, std::string_view name, const soft_state<S>& state,
                   index batch) const {
    const std::string n = std::string(name);
    check_shape(op, n + ".registers", state.registers, batch, shape_.registers * shape_.n);
    check_shape(op, n + ".memory", state.memory, batch, shape_.memory * shape_.n);
    check_shape(op, n + ".counter", state.counter, batch, shape_.lines);
    if (static_cast<index>(state.halted.size()) != batch) {
      throw shape_error(ncl::detail::concat(op, ": ", name, ".halted has ", state.halted.size(),
                                            " entries, expected ", batch));
    }
    if (batch < 1) throw shape_error(ncl::detail::concat(op, ": ", name, " has an empty batch"));
  }

  void check_program(std::string_view op, std::string_view name,
                     const soft_program<S>& program) const {
    const std::string n = std::string(name);
    check_shape(op, n + ".op", program.op, shape_.lines, detail::opcode_columns);
    check_shape(op, n + ".dst", program.dst, shape_.lines, shape_.registers);
    check_shape(op, n + ".a", program.a, shape_.lines, shape_.registers);
    check_shape(op, n + ".b", program.b, shape_.lines, shape_.registers);
    check_shape(op, n + ".imm", program.imm, shape_.lines, shape_.n);
  }

  void pack(detail::packed_programs<S>& out, std::span<const soft_program<S>> programs,
            index batch, std::string_view op) const {
    const auto count = static_cast<index>(programs.size());
    if (count != 1 && count != batch) {
      throw shape_error(ncl::detail::concat(op, ": ", count, " programs for a batch of ", batch,
                                            "; give 1 (shared) or one per element"));
    }
    out.fields.resize(programs.size());
    out.control.resize(programs.size());
    out.batch = batch;
    for (std::size_t p = 0; p < programs.size(); ++p) {
      check_program(op, ncl::detail::concat("programs[", p, "]"), programs[p]);
      detail::pack_program(out.fields[p], programs[p], layout_);
      detail::pack_control(out.control[p], programs[p]);
    }
  }

  /// The batch split into one contiguous slice per thread when the work is worth it: each
  /// thread steps its slice on its own, the ALU included, so a step has one fork and join.
  std::vector<detail::batch_slice<S>> make_slices(index batch) const {
    index threads = 1;
#if defined(_OPENMP)
    threads = omp_get_max_threads();
#endif
    const index work = shape_.n * (shape_.n + shape_.registers + 2 * shape_.memory + shape_.lines);
    const index wanted = slices_ > 0 ? slices_ : (batch * work >= (index{1} << 15) ? threads : 1);
    const index count = std::max<index>(1, std::min(wanted, batch));
    std::vector<detail::batch_slice<S>> slices(static_cast<std::size_t>(count));
    for (index k = 0; k < count; ++k) {
      auto& slice = slices[static_cast<std::size_t>(k)];
      slice.id = k;
      slice.begin = batch * k / count;
      slice.end = batch * (k + 1) / count;
    }
    return slices;
  }

  /// One step of every slice.
  void forward_all(soft_state<S>& next, step_cache<S>& cache, const soft_state<S>& state,
                   const detail::packed_programs<S>& programs,
                   std::vector<detail::batch_slice<S>>& slices) const {
    prepare_forward(next, cache, state.batch());
    const auto count = static_cast<index>(slices.size());
    NCL_MACHINE_PARALLEL_FOR(threaded_ && count > 1)
    for (index k = 0; k < count; ++k) {
      step_forward(next, cache, state, programs, slices[static_cast<std::size_t>(k)]);
    }
  }

  void prepare_forward(soft_state<S>& next, step_cache<S>& cache, index batch) const;
  void step_forward(soft_state<S>& next, step_cache<S>& cache, const soft_state<S>& state,
                    const detail::packed_programs<S>& programs,
                    detail::batch_slice<S>& slice) const;
  void prepare_backward(backward_workspace<S>& ws, index batch) const;
  void step_backward(soft_state<S>& dstate, backward_workspace<S>& ws, const soft_state<S>& dnext,
                     const step_cache<S>& cache, const soft_state<S>& state,
                     const detail::packed_programs<S>& programs,
                     detail::batch_slice<S>& slice) const;

  machine_shape shape_;
  control_mode control_;
  alu::arithmetic_unit<S> alu_;
  detail::program_layout layout_;
  index slices_ = 0;
  bool threaded_ = true;
};

}  // namespace ncl::machine

#include "ncl/machine/interpreter_step.hpp"
