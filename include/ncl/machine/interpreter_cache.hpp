// The soft interpreter's data: the packed program layout, the per-step forward cache (what
// backward needs), the tape of a T-step unroll and the gradient buffers. See interpreter.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "ncl/alu/opcode.hpp"
#include "ncl/core/tensor.hpp"
#include "ncl/machine/shape.hpp"

namespace ncl::machine {

namespace detail {

inline constexpr index opcode_columns = static_cast<index>(alu::opcode_count);  // A = 23

constexpr index column(alu::opcode op) { return static_cast<index>(alu::index_of(op)); }

/// Position of the first table op (ADD) in the op distribution; the table ops are contiguous.
inline constexpr index table_op_offset = column(alu::opcode::ADD);
static_assert(column(alu::opcode::LT) - column(alu::opcode::ADD) + 1 ==
                  static_cast<index>(alu::table_op_count),
              "the ALU's table ops must be contiguous in opcode order");

/// The value ops (ISA.md step 3): their f mass is w, the probability of a register write.
inline constexpr alu::opcode value_ops[] = {
    alu::opcode::SET, alu::opcode::MOV, alu::opcode::INC, alu::opcode::DEC,
    alu::opcode::ADD, alu::opcode::SUB, alu::opcode::MUL, alu::opcode::DIV,
    alu::opcode::MOD, alu::opcode::MIN, alu::opcode::MAX, alu::opcode::EQ,
    alu::opcode::LT,  alu::opcode::READ, alu::opcode::STORE, alu::opcode::CALL};

inline constexpr index col_set = column(alu::opcode::SET);
inline constexpr index col_mov = column(alu::opcode::MOV);
inline constexpr index col_inc = column(alu::opcode::INC);
inline constexpr index col_dec = column(alu::opcode::DEC);
inline constexpr index col_read = column(alu::opcode::READ);
inline constexpr index col_store = column(alu::opcode::STORE);
inline constexpr index col_write = column(alu::opcode::WRITE);
inline constexpr index col_halt = column(alu::opcode::HALT);
inline constexpr index col_jmp = column(alu::opcode::JMP);
inline constexpr index col_jz = column(alu::opcode::JZ);
inline constexpr index col_jnz = column(alu::opcode::JNZ);
inline constexpr index col_jr = column(alu::opcode::JR);
inline constexpr index col_call = column(alu::opcode::CALL);

/// w = sum of f over the value ops: the probability that this step writes a register.
template <class S>
S write_mass(const S* f) {
  S w = S(0);
  for (alu::opcode op : value_ops) w += f[column(op)];
  return w;
}

/// One line of a packed program is its five fields side by side, so the fetch of ISA.md
/// step 1 is the counter's mixture of the lines of P (L, W): f | d | alpha | beta | k.
struct program_layout {
  index R = 0;
  index n = 0;
  index op() const { return 0; }
  index dst() const { return opcode_columns; }
  index a() const { return opcode_columns + R; }
  index b() const { return opcode_columns + 2 * R; }
  index imm() const { return opcode_columns + 3 * R; }
  /// The fields' columns padded with zero columns to a multiple of 16, so a line is whole
  /// vectors of float (or double) and the fetch has no scalar tail.
  index width() const { return (opcode_columns + 3 * R + n + 15) / 16 * 16; }
};

/// The programs of a batch, packed: one for every element (shared) or one per element.
/// Program p serves batch rows [first(p), first(p) + rows(p)).
template <class S>
struct packed_programs {
  std::vector<matrix<S>> fields;  // each (L, W), W = layout.width() with zero padding
  // Per line, the op probabilities step 5 reads (columns of control_columns), computed once
  // per unroll: g_JMP + g_CALL, g_JZ, g_JNZ, the rest (1 - the six control ops), g_JR, g_HALT.
  std::vector<matrix<S>> control;  // each (6, L): one row per quantity, lines contiguous
  std::vector<matrix<S>> a_transposed;    // each (R, L): the a field, lines contiguous
  std::vector<matrix<S>> imm_transposed;  // each (n, L): the imm field, lines contiguous
  index batch = 0;

  index count() const { return static_cast<index>(fields.size()); }
  bool shared() const { return fields.size() == 1; }
  index first(index p) const { return shared() ? 0 : p; }
  index rows(index) const { return shared() ? batch : 1; }
  const matrix<S>& of(index p) const { return fields[static_cast<std::size_t>(p)]; }

  /// fn(p, b0, nb) for each program p and its rows [b0, b0 + nb) inside [begin, end).
  template <class F>
  void for_each_in(index begin, index end, F&& fn) const {
    if (shared()) {
      if (end > begin) fn(index{0}, begin, end - begin);
    } else {
      for (index b = begin; b < end; ++b) fn(b, b, index{1});
    }
  }
};

/// A contiguous slice of the batch that one thread steps on its own, with its copies of
/// the ALU's arguments (the ALU takes whole matrices). Each slice has cache lines of its own:
/// assigning to a matrix rewrites its size fields, and two threads writing one line slow
/// each other down at every step.
template <class S>
struct alignas(64) batch_slice {
  index begin = 0, end = 0;
  index id = 0;  // which slice: picks the thread's gradient buffer of a shared program
  matrix<S> f, u, v, o;         // (rows, 9), (rows, n) x 3
  matrix<S> df, du, dv, dout;   // backward
  matrix<S> line_sums;          // (6 + R + 1, L) per-line control gradients, backward

  index rows() const { return end - begin; }
};

enum control_row : index { row_jump, row_jz, row_jnz, row_rest, row_jr, row_halt, control_rows };

/// out (6, L): the control quantities of every line of `program` (see packed_programs).
template <class S>
void pack_control(matrix<S>& out, const soft_program<S>& program) {
  using alu::opcode;
  const index L = program.lines();
  out.resize(control_rows, L);
  for (index l = 0; l < L; ++l) {
    const S jump = program.op(l, column(opcode::JMP)) + program.op(l, column(opcode::CALL));
    const S jz = program.op(l, column(opcode::JZ)), jnz = program.op(l, column(opcode::JNZ));
    const S jr = program.op(l, column(opcode::JR)), halt = program.op(l, column(opcode::HALT));
    out(row_jump, l) = jump;
    out(row_jz, l) = jz;
    out(row_jnz, l) = jnz;
    out(row_rest, l) = S(1) - jump - jz - jnz - jr - halt;
    out(row_jr, l) = jr;
    out(row_halt, l) = halt;
  }
}

template <class S>
void pack_program(matrix<S>& out, const soft_program<S>& program, const program_layout& layout) {
  const index L = program.lines();
  out.setZero(L, layout.width());
  out.middleCols(layout.op(), opcode_columns) = program.op;
  out.middleCols(layout.dst(), layout.R) = program.dst;
  out.middleCols(layout.a(), layout.R) = program.a;
  out.middleCols(layout.b(), layout.R) = program.b;
  out.middleCols(layout.imm(), layout.n) = program.imm;
}

/// program's five fields += the matching columns of packed (L, W).
template <class S>
void unpack_add(soft_program<S>& program, const matrix<S>& packed, const program_layout& layout) {
  program.op += packed.middleCols(layout.op(), opcode_columns);
  program.dst += packed.middleCols(layout.dst(), layout.R);
  program.a += packed.middleCols(layout.a(), layout.R);
  program.b += packed.middleCols(layout.b(), layout.R);
  program.imm += packed.middleCols(layout.imm(), layout.n);
}

/// Elements per chunk: the table ALU's lane count.
inline constexpr index chunk_lanes = 16;

template <class S>
struct lane_kit {
  static constexpr index K = chunk_lanes;
  using array = Eigen::Array<S, K, 1>;
  static Eigen::Map<const array> at(const S* p, index r) {
    return Eigen::Map<const array>(p + r * K);
  }
  static Eigen::Map<array> at(S* p, index r) { return Eigen::Map<array>(p + r * K); }
};

/// Row offsets of a chunk's state and cache buffers.
struct lane_layout {
  index n = 0, R = 0, M = 0, L = 0, W = 0;
  // state
  index registers() const { return 0; }
  index memory() const { return R * n; }
  index counter() const { return (R + M) * n; }
  index halted() const { return counter() + L; }
  index state_rows() const { return halted() + 1; }
  // cache
  index fetched() const { return 0; }
  index u() const { return W; }
  index v() const { return u() + n; }
  index o() const { return v() + n; }
  index address() const { return o() + n; }
  index read() const { return address() + M; }
  index zero_test() const { return read() + n; }
  index target() const { return zero_test() + L; }
  index jump_weight() const { return target() + L; }
  index jump_registers() const { return jump_weight() + L; }
  index values() const { return jump_registers() + R; }
  index cache_rows() const { return values() + n; }

  lane_layout() = default;
  lane_layout(const machine_shape& shape, const program_layout& program)
      : n(shape.n), R(shape.registers), M(shape.memory), L(shape.lines), W(program.width()) {}
};

/// Lane buffer storage, aligned for whole-vector loads; resizing to a size it has held
/// keeps its memory.
template <class S>
using lane_buffer = std::vector<S, Eigen::aligned_allocator<S>>;

/// The program's gradient from the lane path's backward: the sums over elements (lanes) and
/// steps of outer products, collected column block by column block (16 lanes of one chunk
/// step each) and multiplied out as few large products:
///   fetch        dP[l, :W']  += sum c_l dF          (W' = the fields' width)
///   jump target  dP[l, imm]  += sum target_l dvalues
///   JR and z     dP[l, a]    += sum jumping_l djr + dz_l R0
/// and the per-line sums of the control ops' gradients, kept in lanes (5 L rows) until the
/// end. One per batch slice, so threads never share one.
template <class S>
struct lane_program_grads {
  static constexpr index K = chunk_lanes;
  static constexpr index capacity_blocks = 32;  // chunk steps per flush
  index L = 0, fields = 0, n = 0, R = 0, used = 0;
  lane_buffer<S> c, dF, target, dvalues, jumping, djr, dz, r0, line_sums;

  void reset(const lane_layout& lay, index field_width) {
    L = lay.L;
    fields = field_width;
    n = lay.n;
    R = lay.R;
    used = 0;
    const auto cap = static_cast<std::size_t>(capacity_blocks * K);
    c.resize(static_cast<std::size_t>(L) * cap);
    dF.resize(static_cast<std::size_t>(fields) * cap);
    target.resize(static_cast<std::size_t>(L) * cap);
    dvalues.resize(static_cast<std::size_t>(n) * cap);
    jumping.resize(static_cast<std::size_t>(L) * cap);
    djr.resize(static_cast<std::size_t>(R) * cap);
    dz.resize(static_cast<std::size_t>(L) * cap);
    r0.resize(static_cast<std::size_t>(R) * cap);
    line_sums.assign(static_cast<std::size_t>(5 * L * K), S(0));
  }
  /// Appends rows (count rows, `stride` lane rows apart) of one chunk step to buffer.
  void put(lane_buffer<S>& buffer, const S* rows, index stride, index count) {
    const index cap = capacity_blocks * K;
    for (index r = 0; r < count; ++r) {
      std::copy(rows + r * stride * K, rows + r * stride * K + K,
                buffer.data() + r * cap + used * K);
    }
  }
  /// dP (L, W) += the collected products; empties the buffers.
  void flush(matrix<S>& dP, const program_layout& program) {
    if (used == 0) return;
    using rows_map = Eigen::Map<const Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>,
                                0, Eigen::OuterStride<>>;
    const index cap = capacity_blocks * K, cols = used * K;
    auto map = [&](const lane_buffer<S>& b, index rows) {
      return rows_map(b.data(), rows, cols, Eigen::OuterStride<>(cap));
    };
    dP.leftCols(fields).noalias() += map(c, L) * map(dF, fields).transpose();
    dP.middleCols(program.imm(), n).noalias() += map(target, L) * map(dvalues, n).transpose();
    dP.middleCols(program.a(), R).noalias() += map(jumping, L) * map(djr, R).transpose();
    dP.middleCols(program.a(), R).noalias() += map(dz, L) * map(r0, R).transpose();
    used = 0;
  }
  /// flush, then the per-line sums: d g_HALT, g_JR, g_JMP (= g_CALL), g_JZ, g_JNZ.
  void finish(matrix<S>& dP, const program_layout& program) {
    flush(dP, program);
    static constexpr index columns[5] = {col_halt, col_jr, col_jmp, col_jz, col_jnz};
    for (index q = 0; q < 5; ++q) {
      for (index l = 0; l < L; ++l) {
        const S total = lane_kit<S>::at(line_sums.data(), q * L + l).sum();
        dP(l, program.op() + columns[q]) += total;
        if (columns[q] == col_jmp) dP(l, program.op() + col_call) += total;
      }
    }
  }
};

/// What the lane path's unroll keeps (interpreter_lanes.hpp): per step every chunk's state
/// and cache in lanes (chunk ch: batch rows [16 ch, 16 ch + 16)), and the backward's scratch
/// per slice.
template <class S>
struct lane_record {
  bool used = false;                      // the last unroll_forward took the lane path
  index chunks = 0;
  std::vector<lane_buffer<S>> states;     // per step t <= T: chunks x state rows x 16
  std::vector<lane_buffer<S>> caches;     // per step t < T: chunks x cache rows x 16
  soft_state<S> last;                     // the final state, before it moves into the tape
  matrix<S> fields_transposed;            // the shared program's fields (W', L)
  std::vector<lane_buffer<S>> d_states, scratch;  // per slice
  std::vector<lane_program_grads<S>> grads;       // per slice
};

}  // namespace detail

/// What one step's backward needs besides the state before the step (ISA.md steps 1-5).
template <class S>
struct step_cache {
  matrix<S> fetched;         // (B, W): f (23) | d (R) | alpha (R) | beta (R) | k (n), step 1
  matrix<S> u, v;            // (B, n) operands, step 2
  matrix<S> f_table;         // (B, 9) f over alu::table_ops, the ALU's op distribution
  matrix<S> o;               // (B, n) the mixed value written to the registers, step 3
  matrix<S> address;         // (B, M) addr(u), the READ and WRITE cell distribution
  matrix<S> read;            // (B, n) the READ op's value sum_m addr(u)_m Mem[m]
  matrix<S> register_zero;   // (B, R) R[r][0]: P(register r is 0)
  matrix<S> zero_test;       // (B, L) per line: z_l = P(line l's operand a is 0), step 5
  matrix<S> jump_weight;     // (B, L) per line: c_l g_JR, the share that jumps to a register
  matrix<S> target_weight;   // (B, L) per line: c_l times the weight of lines(k_l)
  matrix<S> jump_registers;  // (B, R) sum_l c_l g_JR a[l]: JR's operand selection
  matrix<S> jump_targets;    // (B, n) sum_l c_l (s_l imm[l] + g_JR u_l): the values jumped to
};

/// Scratch for one step's backward, reused across the steps of an unroll.
template <class S>
struct backward_workspace {
  matrix<S> d_fetched;         // (B, W)
  matrix<S> du, dv, d_o;       // (B, n)
  matrix<S> df_table;          // (B, 9)
  matrix<S> d_address;         // (B, M)
  matrix<S> d_jump_values;     // (B, n) d loss / d lines^-1: dc' spread over values
  matrix<S> d_jump_registers;  // (B, R)
  matrix<S> d_target_line;     // (B, L) per line: imm[l] . d_jump_values
  matrix<S> d_jump_line;       // (B, L) per line: a[l] . d_jump_registers
  matrix<S> d_zero_test;       // (B, L)
  // Packed program gradients (L, W): one per program, or for a shared program one per
  // batch slice (summed at the end), so threads never add into the same buffer. None when
  // the programs are frozen (program_gradients false: unroll_backward given no programs).
  std::vector<matrix<S>> d_packed;
  bool program_gradients = true;
  std::vector<detail::batch_slice<S>> slices;

  matrix<S>& d_program(const detail::packed_programs<S>& programs, index p, index slice) {
    return d_packed[static_cast<std::size_t>(programs.shared() ? slice : p)];
  }
};

/// A T-step unroll: states[t] is the state before step t, states[steps] the final one.
/// Vectors keep their size between unrolls so a reused tape does not reallocate.
template <class S>
struct machine_tape {
  std::vector<soft_state<S>> states;
  std::vector<step_cache<S>> caches;
  std::int64_t steps = 0;  ///< steps run (fewer than asked when every element halted)
  detail::packed_programs<S> programs;  ///< a copy of the unroll's programs

  // Scratch for unroll_backward, kept so a reused tape does not reallocate.
  mutable backward_workspace<S> workspace;
  mutable soft_state<S> d_next, d_state;
  mutable detail::lane_record<S> lanes;  // the lane path's record and scratch

  const soft_state<S>& initial_state() const { return states.front(); }
  const soft_state<S>& final_state() const { return states[static_cast<std::size_t>(steps)]; }
};

/// A batch of `batch` states with every entry 0 (not a valid machine state: a gradient buffer).
template <class S>
soft_state<S> zero_state(const machine_shape& shape, index batch) {
  soft_state<S> s;
  s.registers.setZero(batch, shape.registers * shape.n);
  s.memory.setZero(batch, shape.memory * shape.n);
  s.counter.setZero(batch, shape.lines);
  s.halted.assign(static_cast<std::size_t>(batch), S(0));
  return s;
}

/// Gradients of a loss with respect to the programs' five fields (as probabilities: the
/// caller's softmax backward maps them to logits) and the initial state. Backward adds.
template <class S>
struct machine_gradients {
  std::vector<soft_program<S>> programs;  // one per program given: 1 (shared) or B
  soft_state<S> initial;                  // registers, memory, counter; halted stays 0

  /// Zeroed buffers for `program_count` programs and a batch of `batch` elements; with
  /// `program_count` 0, unroll_backward takes the programs as frozen and skips their gradients.
  static machine_gradients zeros(const machine_shape& shape, index batch, index program_count) {
    machine_gradients g;
    g.programs.resize(static_cast<std::size_t>(program_count));
    for (auto& p : g.programs) {
      p.op.setZero(shape.lines, detail::opcode_columns);
      p.dst.setZero(shape.lines, shape.registers);
      p.a.setZero(shape.lines, shape.registers);
      p.b.setZero(shape.lines, shape.registers);
      p.imm.setZero(shape.lines, shape.n);
    }
    g.initial = zero_state<S>(shape, batch);
    return g;
  }
};

}  // namespace ncl::machine
