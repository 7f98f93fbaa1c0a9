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
// One step, batched (B rows): the fetch (step 1) mixes the lines of the packed program P
// (L, W) by the counter c; the register reads, memory, value mixture and writes run per
// element; the ALU (alu.hpp) runs once per batch slice; control (step 5) is
// interpreter_control.hpp. Backward is the forward read in reverse, and adds into its
// buffers. The batch elements are independent through time, so a threaded unroll is one
// region on ncl's thread pool (core/parallel.hpp): each thread runs its slices through
// every step (forward meets only where every element of a thread's slices has halted, to
// agree on the early stop; backward does not meet at all).
//
// The lane path (interpreter_lanes.hpp) is the same step on chunks of 16 elements held
// batch-innermost, so each term is one multiply-add across the 16 elements. It serves the
// common case (per-line control, the table ALU, one program shared by the batch) with the
// same arithmetic; bench_machine's _no_lanes rows measure what it saves (README). The per-element step serves the rest
// (mean-field control, the dense and circuit ALUs, one program per element), and
// set_lane_path(false) selects it for comparison.
#pragma once

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "ncl/alu/alu.hpp"
#include "ncl/alu/opcode.hpp"
#include "ncl/core/error.hpp"
#include "ncl/core/parallel.hpp"
#include "ncl/core/tensor.hpp"
#include "ncl/machine/interpreter_cache.hpp"
#include "ncl/machine/interpreter_control.hpp"
#include "ncl/machine/interpreter_lanes.hpp"
#include "ncl/machine/memory.hpp"
#include "ncl/machine/registers.hpp"
#include "ncl/machine/shape.hpp"

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
/// counter one-hot on line `entry`, h = 0 (initial_soft_state with every input 0).
template <class S>
soft_state<S> initial_state(const machine_shape& shape, index batch, std::int64_t entry = 0) {
  return initial_soft_state<S>(shape, entry, machine_inputs{}, batch);
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

  /// Splits the batch into `count` slices (at most B; on the lane path at most one per 16
  /// elements), shared out among the pool's threads when `threads`, else one after another; 0,
  /// the default, picks one slice per 16 elements when the batch and the steps are work
  /// enough to pay for threads. The results do not depend on the thread count either way.
  void set_slices(index count, bool threads = true) {
    if (count < 0) throw value_error(ncl::detail::concat("set_slices: count = ", count, " < 0"));
    slices_ = count;
    threaded_ = threads;
  }

  /// With `on` false the machine steps element by element even where its 16-lane path
  /// (interpreter_lanes.hpp: per-line control, the table ALU, one shared program) applies;
  /// the tests compare the two.
  void set_lane_path(bool on) { lane_path_ = on; }

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
    const bool lanes = uses_lanes(packed, steps);
    auto slices = make_slices(state.batch(), steps, lanes ? detail::chunk_lanes : 1);
    if (lanes) return run_lanes(state, packed, slices, steps);
    soft_state<S> next;
    step_cache<S> cache;  // every step overwrites it: run keeps no tape
    prepare_forward(next, cache, state.batch());
    soft_state<S>* buffers[2] = {&state, &next};  // the state before step t is buffers[t % 2]
    const std::int64_t ran = for_each_step(
        slices, steps, [](std::int64_t) {},
        [&](std::int64_t t, detail::batch_slice<S>& slice) {
          step_forward(*buffers[(t + 1) % 2], cache, *buffers[t % 2], packed, slice);
        },
        [&](std::int64_t t, const detail::batch_slice<S>& slice) {
          return slice_halted(*buffers[(t + 1) % 2], slice);
        });
    if (ran % 2 == 1) std::swap(state, next);
    return ran;
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
    tape.lanes.used = uses_lanes(tape.programs, steps);
    if (tape.lanes.used) return unroll_forward_lanes(tape, initial, steps);
    const auto count = static_cast<std::size_t>(steps);
    if (tape.states.size() < count + 1) tape.states.resize(count + 1);
    if (tape.caches.size() < count) tape.caches.resize(count);
    tape.states[0] = initial;
    auto& slices = tape.workspace.slices;
    slices = make_slices(initial.batch(), steps);
    tape.steps = for_each_step(
        slices, steps,
        [&](std::int64_t t) {
          const auto i = static_cast<std::size_t>(t);
          prepare_forward(tape.states[i + 1], tape.caches[i], initial.batch());
        },
        [&](std::int64_t t, detail::batch_slice<S>& slice) {
          const auto i = static_cast<std::size_t>(t);
          step_forward(tape.states[i + 1], tape.caches[i], tape.states[i], tape.programs, slice);
        },
        [&](std::int64_t t, const detail::batch_slice<S>& slice) {
          return slice_halted(tape.states[static_cast<std::size_t>(t) + 1], slice);
        });
  }
  void unroll_forward(machine_tape<S>& tape, const soft_state<S>& initial,
                      const soft_program<S>& program, std::int64_t steps) const {
    unroll_forward(tape, initial, std::span<const soft_program<S>>(&program, 1), steps);
  }

  /// Backward through the tape's steps: given dfinal = d loss / d final state (registers,
  /// memory, counter, halted), adds d loss / d program fields into grads.programs (one per
  /// program of the unroll) and d loss / d initial registers, memory, counter into
  /// grads.initial. With grads.programs empty the programs are taken as frozen (a compiled
  /// library): their gradients are not computed at all, only the initial state's.
  void unroll_backward(machine_gradients<S>& grads, const machine_tape<S>& tape,
                       const soft_state<S>& dfinal) const {
    const detail::packed_programs<S>& programs = tape.programs;
    const index B = programs.batch;
    if (tape.states.empty()) {
      throw value_error("soft_interpreter::unroll_backward: the tape holds no unroll");
    }
    check_state("soft_interpreter::unroll_backward", "dfinal", dfinal, B);
    check_state("soft_interpreter::unroll_backward", "grads.initial", grads.initial, B);
    const bool program_gradients = !grads.programs.empty();
    if (program_gradients && static_cast<index>(grads.programs.size()) != programs.count()) {
      throw shape_error(ncl::detail::concat(
          "soft_interpreter::unroll_backward: grads.programs has ", grads.programs.size(),
          " programs, the unroll ran ", programs.count(), " (or give none: frozen programs)"));
    }
    for (const auto& g : grads.programs) {
      check_program("soft_interpreter::unroll_backward", "grads.programs", g);
    }
    if (tape.lanes.used) {
      if (alu_.table() == nullptr || control_ != control_mode::per_line) {
        throw value_error(ncl::detail::concat(
            "soft_interpreter::unroll_backward: the tape was recorded on the lane path (table "
            "ALU, per-line control); this machine has the ", alu::backend_name(alu_.kind()),
            " ALU and ", control_mode_name(control_), " control: run backward on the machine "
            "that ran forward"));
      }
      return unroll_backward_lanes(grads, tape, dfinal, program_gradients);
    }
    auto& ws = tape.workspace;
    auto& slices = ws.slices;
    slices = make_slices(B, tape.steps);
    ws.program_gradients = program_gradients;
    const index buffers = !program_gradients ? 0
                          : programs.shared() ? static_cast<index>(slices.size())
                                              : programs.count();
    ws.d_packed.resize(static_cast<std::size_t>(buffers));
    for (auto& d : ws.d_packed) d.setZero(shape_.lines, layout_.width());
    prepare_backward(ws, B);
    // d state after step t alternates between two buffers: d_next holds d final first.
    soft_state<S>* d_buffers[2] = {&tape.d_next, &tape.d_state};
    *d_buffers[0] = dfinal;
    d_buffers[1]->registers.resize(B, dfinal.registers.cols());
    d_buffers[1]->memory.resize(B, dfinal.memory.cols());
    d_buffers[1]->counter.resize(B, dfinal.counter.cols());
    d_buffers[1]->halted.assign(static_cast<std::size_t>(B), S(0));
    // The slices are independent through time (only the shared program's gradient couples
    // them, and each slice has its own buffer), so each thread runs its slices through every
    // step with no barrier.
    const std::int64_t steps = tape.steps;
    for_each_slice(slices, [&](detail::batch_slice<S>& slice) {
      for (std::int64_t i = 0; i < steps; ++i) {
        const auto t = static_cast<std::size_t>(steps - 1 - i);
        const soft_state<S>& dnext = *d_buffers[i % 2];
        soft_state<S>& dstate = *d_buffers[(i + 1) % 2];
        const index rows = slice.rows();
        dstate.registers.middleRows(slice.begin, rows).setZero();
        dstate.counter.middleRows(slice.begin, rows).setZero();
        // h' does not depend on h; step_backward writes (not adds) the memory rows.
        std::fill(dstate.halted.begin() + slice.begin, dstate.halted.begin() + slice.end, S(0));
        step_backward(dstate, ws, dnext, tape.caches[t], tape.states[t], programs, slice);
      }
    });
    const soft_state<S>& dinitial = *d_buffers[steps % 2];
    grads.initial.registers += dinitial.registers;
    grads.initial.memory += dinitial.memory;
    grads.initial.counter += dinitial.counter;
    if (!program_gradients) return;
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
    out.a_transposed.resize(programs.size());
    out.imm_transposed.resize(programs.size());
    out.batch = batch;
    for (std::size_t p = 0; p < programs.size(); ++p) {
      check_program(op, ncl::detail::concat("programs[", p, "]"), programs[p]);
      detail::pack_program(out.fields[p], programs[p], layout_);
      detail::pack_control(out.control[p], programs[p]);
      out.a_transposed[p] = programs[p].a.transpose();
      out.imm_transposed[p] = programs[p].imm.transpose();
    }
  }

  /// The batch split into contiguous slices: by default one per 16 elements when the work
  /// of `steps` steps is worth threads, else one; set_slices overrides the count. Slices
  /// start at multiples of `unit` elements (16 on the lane path, where a chunk's lanes must
  /// not depend on the split). The threads share the slices out: the split depends on the
  /// batch and the work only, never on the thread count, so neither does anything summed
  /// over slices (the program gradients). Below the threshold (on the 2-core machines
  /// measured: one step of B = 32 at n <= 64) the threads' fork and the move of their rows
  /// of the caller's state to their cores cost more than they save.
  std::vector<detail::batch_slice<S>> make_slices(index batch, std::int64_t steps,
                                                  index unit = 1) const {
    const index per_slice = detail::chunk_lanes;
    const index work = shape_.n * (shape_.n + shape_.registers + 2 * shape_.memory + shape_.lines);
    const double total = static_cast<double>(batch) * static_cast<double>(work) *
                         static_cast<double>(steps);
    const index wanted = slices_ > 0 ? slices_
                                     : (total >= double(1 << 19) ? (batch + per_slice - 1) / per_slice : 1);
    const index units = (batch + unit - 1) / unit;
    const index count = std::max<index>(1, std::min(wanted, units));
    std::vector<detail::batch_slice<S>> slices(static_cast<std::size_t>(count));
    for (index k = 0; k < count; ++k) {
      auto& slice = slices[static_cast<std::size_t>(k)];
      slice.id = k;
      slice.begin = std::min(batch, unit * (units * k / count));
      slice.end = std::min(batch, unit * (units * (k + 1) / count));
    }
    return slices;
  }

  /// True when every element of the slice has halted in `state` (ISA.md step 6).
  static bool slice_halted(const soft_state<S>& state, const detail::batch_slice<S>& slice) {
    return std::all_of(state.halted.begin() + slice.begin, state.halted.begin() + slice.end,
                       [](S h) { return h == S(1); });
  }

  /// fn(slice) for every slice, on the pool's threads when threaded.
  template <class Fn>
  void for_each_slice(std::vector<detail::batch_slice<S>>& slices, Fn&& fn) const {
    const auto count = static_cast<index>(slices.size());
    ncl::detail::parallel_for(count, threaded_ && count > 1,
                              [&](index k) { fn(slices[static_cast<std::size_t>(k)]); });
  }

  /// step(t, slice) for t = 0, 1, ... and every slice, stopping after the first step t at
  /// which halted(t, slice) holds for every slice (or after `steps`); returns the steps run.
  /// prepare(t) sizes step t's buffers before any slice steps t.
  ///
  /// Threaded, it is one parallel region, and the threads step their slices on their own:
  /// a thread waits for the others only at a step after which all of its own slices have
  /// halted (the run can only end there), to learn whether every other slice has too. A
  /// run that never halts meets nowhere but at the block ends: buffers are sized a block of
  /// `prepare_block` steps ahead, so an early stop leaves at most one block unused.
  template <class Prepare, class Step, class Halted>
  std::int64_t for_each_step(std::vector<detail::batch_slice<S>>& slices, std::int64_t steps,
                             Prepare&& prepare, Step&& step, Halted&& halted) const {
#if defined(_OPENMP)
    const auto count = static_cast<index>(slices.size());
    if (ncl::detail::threaded(threaded_ && count > 1 && steps > 0)) {
      constexpr std::int64_t prepare_block = 64;
      // flags[(t - first) * count + k]: 0 while slice k has not finished step t of the
      // block starting at `first`, then 1 (running on) or 2 (halted).
      std::vector<std::atomic<int>> flags(
          static_cast<std::size_t>(std::min(steps, prepare_block) * count));
      std::atomic<std::int64_t> ran{steps};
      const auto prepare_from = [&](std::int64_t first) {
        for (std::int64_t t = first; t < std::min(steps, first + prepare_block); ++t) prepare(t);
        for (auto& flag : flags) flag.store(0, std::memory_order_relaxed);
      };
      prepare_from(0);  // a run of up to 64 steps meets only where the region ends
      const int members = static_cast<int>(std::min<index>(count, ncl::detail::team_size()));
      std::barrier meet(members);
      const bool ran_threaded = ncl::detail::parallel_team(members, [&](int member, int team) {
        const index threads = team, me = member;
        for (std::int64_t first = 0;;) {
          const std::int64_t last = std::min(steps, first + prepare_block);
          for (std::int64_t t = first; t < last && ran.load(std::memory_order_relaxed) == steps;
               ++t) {
            std::atomic<int>* now = flags.data() + (t - first) * count;
            bool mine_halted = true;
            for (index k = me; k < count; k += threads) {
              auto& slice = slices[static_cast<std::size_t>(k)];
              step(t, slice);
              const bool h = halted(t, slice);
              mine_halted = mine_halted && h;
              now[k].store(h ? 2 : 1, std::memory_order_release);
            }
            if (!mine_halted) continue;  // the run goes on past t: no need to wait
            bool all = true;
            for (index k = 0; k < count && all; ++k) {
              int flag;
              for (int spins = 0; (flag = now[k].load(std::memory_order_acquire)) == 0; ++spins) {
                if (spins >= 64) std::this_thread::yield();
              }
              all = flag == 2;
            }
            // Every thread whose slices all halted at t sees the same flags: if all halted,
            // each of them stores the same count and leaves at t.
            if (all) ran.store(t + 1, std::memory_order_relaxed);
          }
          first = last;
          if (first >= steps) break;
          meet.arrive_and_wait();
          if (ran.load(std::memory_order_relaxed) != steps) break;  // read after the barrier
          if (me == 0) prepare_from(first);
          meet.arrive_and_wait();  // publishes the buffers and the flags
        }
      });
      if (ran_threaded) return ran.load();
    }
#endif
    const ncl::detail::serial_eigen one_thread;
    for (std::int64_t t = 0; t < steps; ++t) {
      prepare(t);
      bool all = true;
      for (auto& slice : slices) {
        step(t, slice);
        all = halted(t, slice) && all;
      }
      if (all) return t + 1;
    }
    return steps;
  }

  /// unroll_forward on the lane path: tape.lanes keeps every step's chunk states and caches,
  /// tape.states only the initial and the final state.
  void unroll_forward_lanes(machine_tape<S>& tape, const soft_state<S>& initial,
                            std::int64_t steps) const {
    static constexpr index K = detail::chunk_lanes;
    const detail::lane_layout lay(shape_, layout_);
    auto& record = tape.lanes;
    auto slices = make_slices(initial.batch(), steps, detail::chunk_lanes);
    record.chunks = (initial.batch() + K - 1) / K;
    const auto state_size = static_cast<std::size_t>(record.chunks * lay.state_rows() * K);
    const auto cache_size = static_cast<std::size_t>(record.chunks * lay.cache_rows() * K);
    const auto count = static_cast<std::size_t>(steps);
    if (record.states.size() < count + 1) record.states.resize(count + 1);
    if (record.caches.size() < count) record.caches.resize(count);
    record.states[0].resize(state_size);
    const auto& programs = tape.programs;
    // The final state, stored by each slice where the run can end (kept in the record, so a
    // reused tape swaps buffers rather than allocating).
    soft_state<S>& last = record.last;
    last.registers.resize(initial.batch(), initial.registers.cols());
    last.memory.resize(initial.batch(), initial.memory.cols());
    last.counter.resize(initial.batch(), initial.counter.cols());
    last.halted.resize(initial.halted.size());
    tape.steps = for_each_step(
        slices, steps,
        [&](std::int64_t t) {
          record.states[static_cast<std::size_t>(t) + 1].resize(state_size);
          record.caches[static_cast<std::size_t>(t)].resize(cache_size);
        },
        [&](std::int64_t t, detail::batch_slice<S>& slice) {
          const auto i = static_cast<std::size_t>(t);
          for (index b0 = slice.begin, ch = b0 / K; b0 < slice.end; b0 += K, ++ch) {
            S* from = record.states[i].data() + ch * lay.state_rows() * K;
            if (t == 0) detail::load_lanes(from, initial, b0, std::min(K, slice.end - b0), lay);
            detail::lane_step_forward(record.states[i + 1].data() + ch * lay.state_rows() * K,
                                      record.caches[i].data() + ch * lay.cache_rows() * K, from,
                                      programs.of(0), programs.control[0],
                                      programs.a_transposed[0], layout_, *alu_.table(), lay);
          }
        },
        [&](std::int64_t t, const detail::batch_slice<S>& slice) {
          const S* to = record.states[static_cast<std::size_t>(t) + 1].data();
          bool halted = true;
          for (index b0 = slice.begin; b0 < slice.end && halted; b0 += K) {
            halted = detail::lanes_halted(to + b0 / K * lay.state_rows() * K,
                                          std::min(K, slice.end - b0), lay);
          }
          if (halted || t + 1 == steps) {  // where the run can end: the final state (run's)
            for (index b0 = slice.begin; b0 < slice.end; b0 += K) {
              detail::store_lanes(last, to + b0 / K * lay.state_rows() * K, b0,
                                  std::min(K, slice.end - b0), lay);
            }
          }
          return halted;
        });
    const auto ran = static_cast<std::size_t>(tape.steps);
    if (tape.states.size() < ran + 1) tape.states.resize(ran + 1);
    tape.states[0] = initial;
    if (ran > 0) std::swap(tape.states[ran], last);
  }

  /// unroll_backward on the lane path: each slice runs its chunks back through the steps; a
  /// shared program's gradient is collected per slice and summed at the end.
  void unroll_backward_lanes(machine_gradients<S>& grads, const machine_tape<S>& tape,
                             const soft_state<S>& dfinal, bool program_gradients) const {
    static constexpr index K = detail::chunk_lanes;
    const detail::lane_layout lay(shape_, layout_);
    auto& record = tape.lanes;
    const std::int64_t steps = tape.steps;
    if (steps == 0) {
      grads.initial.registers += dfinal.registers;
      grads.initial.memory += dfinal.memory;
      grads.initial.counter += dfinal.counter;
      return;
    }
    const auto& programs = tape.programs;
    const matrix<S>& P = programs.of(0);
    const index fields = layout_.imm() + shape_.n;
    record.fields_transposed = P.leftCols(fields).transpose();
    const auto slices = make_slices(programs.batch, steps, detail::chunk_lanes);
    const auto count = slices.size();
    record.d_states.resize(count);
    record.scratch.resize(count);
    record.grads.resize(count);
    auto& d_packed = tape.workspace.d_packed;
    d_packed.resize(program_gradients ? count : 0);
    for (auto& d : d_packed) d.setZero(shape_.lines, layout_.width());
    const auto backward_slice = [&](index k) {
      const auto slot = static_cast<std::size_t>(k);
      const index begin = slices[slot].begin, end = slices[slot].end;
      auto& d = record.d_states[slot];
      d.resize(static_cast<std::size_t>(2 * lay.state_rows() * K));
      record.scratch[slot].resize(static_cast<std::size_t>(detail::lane_backward_rows(lay) * K));
      detail::lane_program_grads<S>* collected = nullptr;
      if (program_gradients) {
        collected = &record.grads[slot];
        collected->reset(lay, fields);
      }
      S* d_buffers[2] = {d.data(), d.data() + lay.state_rows() * K};
      for (index b0 = begin, ch = b0 / K; b0 < end; b0 += K, ++ch) {
        const index rows = std::min(K, end - b0);
        detail::load_lanes(d_buffers[0], dfinal, b0, rows, lay);
        for (std::int64_t i = 0; i < steps; ++i) {
          const auto t = static_cast<std::size_t>(steps - 1 - i);
          if (collected != nullptr && collected->used == collected->capacity_blocks) {
            collected->flush(d_packed[slot], layout_);
          }
          detail::lane_step_backward(
              d_buffers[(i + 1) % 2], d_buffers[i % 2],
              record.caches[t].data() + ch * lay.cache_rows() * K,
              record.states[t].data() + ch * lay.state_rows() * K, P, record.fields_transposed,
              programs.control[0], programs.a_transposed[0], programs.imm_transposed[0], layout_,
              *alu_.table(), lay, record.scratch[slot].data(), collected);
        }
        detail::add_lanes(grads.initial, d_buffers[steps % 2], b0, rows, lay);
      }
      if (collected != nullptr) collected->finish(d_packed[slot], layout_);
    };
    ncl::detail::parallel_for(static_cast<index>(count), threaded_ && count > 1, backward_slice);
    if (!program_gradients) return;
    for (std::size_t k = 1; k < d_packed.size(); ++k) d_packed[0] += d_packed[k];
    detail::unpack_add(grads.programs[0], d_packed[0], layout_);
  }

  /// The lane path serves per-line control, the table ALU and a shared program, for runs of
  /// 2 steps or more: it moves the state into lanes and back once per run, which one step
  /// does not repay (bench_machine's BM_machine_step at n = 32: 0.041 ms on lanes, 0.025
  /// element by element).
  bool uses_lanes(const detail::packed_programs<S>& programs, std::int64_t steps) const {
    return lane_path_ && control_ == control_mode::per_line && alu_.table() != nullptr &&
           programs.shared() && steps >= 2;
  }

  /// run() on the lane path: each slice's chunks of 16 elements are loaded into lanes at
  /// its first step and stored back after the last.
  std::int64_t run_lanes(soft_state<S>& state, const detail::packed_programs<S>& programs,
                         std::vector<detail::batch_slice<S>>& slices, std::int64_t steps) const {
    static constexpr index K = detail::chunk_lanes;
    const detail::lane_layout lay(shape_, layout_);
    struct slice_lanes {
      index chunks = 0;
      detail::lane_buffer<S> states[2], cache;
    };
    // Kept by the calling thread between runs: no fresh pages to fault in at every run.
    // (The lambdas below run on other threads: they reach it through this reference, since a
    // thread_local named in a lambda would be the running thread's own.)
    thread_local std::vector<slice_lanes> kept;
    std::vector<slice_lanes>& work = kept;
    if (work.size() < slices.size()) work.resize(slices.size());
    for (auto& w : work) w.chunks = 0;  // loaded at step 0: none when no step runs
    const auto count_in = [](const detail::batch_slice<S>& slice, index chunk) {
      return std::min(K, slice.rows() - chunk * K);
    };
    const std::int64_t done = for_each_step(
        slices, steps, [](std::int64_t) {},
        [&](std::int64_t t, detail::batch_slice<S>& slice) {
          auto& w = work[static_cast<std::size_t>(slice.id)];
          if (t == 0) {
            w.chunks = (slice.rows() + K - 1) / K;
            for (auto& b : w.states) b.resize(w.chunks * lay.state_rows() * K);
            w.cache.resize(lay.cache_rows() * K);
            for (index ch = 0; ch < w.chunks; ++ch) {
              detail::load_lanes(w.states[0].data() + ch * lay.state_rows() * K, state,
                                 slice.begin + ch * K, count_in(slice, ch), lay);
            }
          }
          const S* from = w.states[t % 2].data();
          S* to = w.states[(t + 1) % 2].data();
          for (index ch = 0; ch < w.chunks; ++ch) {
            const index offset = ch * lay.state_rows() * K;
            detail::lane_step_forward(to + offset, w.cache.data(), from + offset,
                                      programs.of(0), programs.control[0],
                                      programs.a_transposed[0], layout_, *alu_.table(), lay);
          }
        },
        [&](std::int64_t t, const detail::batch_slice<S>& slice) {
          const auto& w = work[static_cast<std::size_t>(slice.id)];
          const S* to = w.states[(t + 1) % 2].data();
          bool halted = true;
          for (index ch = 0; ch < w.chunks && halted; ++ch) {
            halted = detail::lanes_halted(to + ch * lay.state_rows() * K, count_in(slice, ch), lay);
          }
          // The run can end only after a step at which this slice has halted (or the last):
          // store its state back there, on its own thread.
          if (halted || t + 1 == steps) {
            for (index ch = 0; ch < w.chunks; ++ch) {
              detail::store_lanes(state, to + ch * lay.state_rows() * K, slice.begin + ch * K,
                                  count_in(slice, ch), lay);
            }
          }
          return halted;
        });
    return done;
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
  bool lane_path_ = true;
};

}  // namespace ncl::machine

#include "ncl/machine/interpreter_step.hpp"
