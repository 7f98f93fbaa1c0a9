// One step of the soft interpreter, forward and backward (ISA.md "One step"); the class and
// its documentation are in interpreter.hpp.
#pragma once

#include "ncl/machine/interpreter.hpp"

namespace ncl::machine {

namespace detail {

/// o (n) += the value ops of ISA.md step 3 that the ALU does not compute: SET k, MOV u,
/// INC/DEC u shifted, READ, STORE val(c), CALL val(inc(c)) (c over L <= n lines).
template <class S>
void other_value_ops_forward(S* o, const S* f, const S* k, const S* u, const S* read,
                             const S* c, index L, index n) {
  const S f_set = f[col_set], f_mov = f[col_mov], f_inc = f[col_inc], f_dec = f[col_dec];
  const S f_read = f[col_read];
  for (index j = 0; j < n; ++j) o[j] += f_set * k[j] + f_mov * u[j] + f_read * read[j];
  // INC: value j comes from j - 1; DEC: value j comes from j + 1 (mod n).
  o[0] += f_inc * u[n - 1];
  for (index j = 1; j < n; ++j) o[j] += f_inc * u[j - 1];
  for (index j = 0; j + 1 < n; ++j) o[j] += f_dec * u[j + 1];
  o[n - 1] += f_dec * u[0];
  const S f_store = f[col_store], f_call = f[col_call];
  // STORE: val(c); CALL: val(inc(c)), ra = the next line (L - 1 wraps to 0).
  o[0] += f_store * c[0] + f_call * c[L - 1];
  for (index l = 1; l < L; ++l) o[l] += f_store * c[l] + f_call * c[l - 1];
}

/// Backward of other_value_ops_forward except READ's memory part: df, dk, du, dc add;
/// returns nothing for READ but df[READ] (its memory gradient is memory_read_backward's).
template <class S>
void other_value_ops_backward(S* df, S* dk, S* du, S* dc, const S* dout, const S* f,
                              const S* k, const S* u, const S* read, const S* c, index L,
                              index n) {
  const S f_set = f[col_set], f_mov = f[col_mov], f_inc = f[col_inc], f_dec = f[col_dec];
  df[col_set] += dot(k, dout, n);
  df[col_mov] += dot(u, dout, n);
  df[col_read] += dot(read, dout, n);
  df[col_inc] += dot(u, dout + 1, n - 1) + u[n - 1] * dout[0];  // o_inc[j] = u[j - 1]
  df[col_dec] += dot(u + 1, dout, n - 1) + u[0] * dout[n - 1];  // o_dec[j] = u[j + 1]
  for (index j = 0; j < n; ++j) {
    dk[j] += f_set * dout[j];
    du[j] += f_mov * dout[j];
  }
  du[n - 1] += f_inc * dout[0];
  for (index j = 0; j + 1 < n; ++j) du[j] += f_inc * dout[j + 1];
  for (index j = 1; j < n; ++j) du[j] += f_dec * dout[j - 1];
  du[0] += f_dec * dout[n - 1];
  const S f_store = f[col_store], f_call = f[col_call];
  df[col_store] += dot(c, dout, L);
  df[col_call] += dot(c, dout + 1, L - 1) + c[L - 1] * dout[0];  // o_call[l] = c[l - 1]
  for (index l = 0; l < L; ++l) dc[l] += f_store * dout[l];
  for (index l = 0; l + 1 < L; ++l) dc[l] += f_call * dout[l + 1];
  dc[L - 1] += f_call * dout[0];
}

}  // namespace detail

template <class S>
void soft_interpreter<S>::prepare_forward(soft_state<S>& next, step_cache<S>& cache,
                                          index B) const {
  const index n = shape_.n, R = shape_.registers, M = shape_.memory, L = shape_.lines;
  cache.fetched.resize(B, layout_.width());
  cache.u.resize(B, n);
  cache.v.resize(B, n);
  cache.f_table.resize(B, static_cast<index>(alu::table_op_count));
  cache.o.resize(B, n);
  cache.address.resize(B, M);
  cache.read.resize(B, n);
  if (control_ == control_mode::per_line) {
    cache.register_zero.resize(B, R);
    cache.zero_test.resize(B, L);
    cache.target_weight.resize(B, L);
    cache.jump_weight.resize(B, L);
    cache.jump_targets.resize(B, n);
    cache.jump_registers.resize(B, R);
  }
  next.registers.resize(B, R * n);
  next.memory.resize(B, M * n);
  next.counter.resize(B, L);
  next.halted.resize(static_cast<std::size_t>(B));
}

template <class S>
void soft_interpreter<S>::step_forward(soft_state<S>& next, step_cache<S>& cache,
                                       const soft_state<S>& state,
                                       const detail::packed_programs<S>& programs,
                                       detail::batch_slice<S>& slice) const {
  using namespace detail;
  const index n = shape_.n, R = shape_.registers, M = shape_.memory, L = shape_.lines,
              W = layout_.width();
  const index begin = slice.begin, end = slice.end, rows = slice.rows();
  const index table_ops = static_cast<index>(alu::table_op_count);

  // Step 1: fetch f | d | alpha | beta | k, the counter's mixture of the packed lines.
  programs.for_each_in(begin, end, [&](index p, index b0, index nb) {
    for (index b = b0; b < b0 + nb; ++b) {
      mix_rows(cache.fetched.data() + b * W, programs.of(p).data(), state.counter.data() + b * L,
               L, W);
    }
  });

  // Step 2: operands u, v; the ALU's share of f.
  for (index b = begin; b < end; ++b) {
    const S* regs = state.registers.data() + b * R * n;
    const S* fetched = cache.fetched.data() + b * W;
    register_read_forward(cache.u.data() + b * n, regs, fetched + layout_.a(), R, n);
    register_read_forward(cache.v.data() + b * n, regs, fetched + layout_.b(), R, n);
    for (index i = 0; i < table_ops; ++i) cache.f_table(b, i) = fetched[table_op_offset + i];
  }

  // Step 3: o = the ALU's table ops (on this slice) + the other value ops; then the writes.
  slice.f = cache.f_table.middleRows(begin, rows);
  slice.u = cache.u.middleRows(begin, rows);
  slice.v = cache.v.middleRows(begin, rows);
  alu_.forward(slice.o, slice.f, slice.u, slice.v);
  cache.o.middleRows(begin, rows) = slice.o;
  for (index b = begin; b < end; ++b) {
    const S* fetched = cache.fetched.data() + b * W;
    const S* f = fetched + layout_.op();
    const S* u = cache.u.data() + b * n;
    const S* c = state.counter.data() + b * L;
    const S* mem = state.memory.data() + b * M * n;
    S* e = cache.address.data() + b * M;
    S* read = cache.read.data() + b * n;
    S* o = cache.o.data() + b * n;
    address_forward(e, u, n, M);
    memory_forward(read, next.memory.data() + b * M * n, mem, e, f[col_write],
                   cache.v.data() + b * n, M, n);
    other_value_ops_forward(o, f, fetched + layout_.imm(), u, read, c, L, n);
    register_write_forward(next.registers.data() + b * R * n, state.registers.data() + b * R * n,
                           fetched + layout_.dst(), write_mass(f), o, R, n);
    if (control_ == control_mode::mean_field) {
      control_mean_field_forward(next.counter.data() + b * L, f, fetched + layout_.imm(), u, c, L,
                                 n);
    }
    next.halted[static_cast<std::size_t>(b)] = f[col_halt];  // step 6
  }

  // Step 5, per line.
  if (control_ == control_mode::per_line) {
    control_per_line_forward(next.counter, cache, state, programs, layout_, begin, end);
  }
}

template <class S>
void soft_interpreter<S>::prepare_backward(backward_workspace<S>& ws, index B) const {
  const index n = shape_.n, R = shape_.registers, M = shape_.memory, L = shape_.lines;
  ws.d_fetched.resize(B, layout_.width());
  ws.du.resize(B, n);
  ws.dv.resize(B, n);
  ws.d_o.resize(B, n);
  ws.d_address.resize(B, M);
  ws.d_jump_values.resize(B, n);
  ws.d_jump_registers.resize(B, R);
  for (auto* m : {&ws.d_target_line, &ws.d_jump_line, &ws.d_zero_test}) {
    m->resize(B, L);
  }
}

template <class S>
void soft_interpreter<S>::step_backward(soft_state<S>& dstate, backward_workspace<S>& ws,
                                        const soft_state<S>& dnext, const step_cache<S>& cache,
                                        const soft_state<S>& state,
                                        const detail::packed_programs<S>& programs,
                                        detail::batch_slice<S>& slice) const {
  using namespace detail;
  const index n = shape_.n, R = shape_.registers, M = shape_.memory, L = shape_.lines,
              W = layout_.width();
  const index begin = slice.begin, end = slice.end, rows = slice.rows();
  const index table_ops = static_cast<index>(alu::table_op_count);
  ws.d_fetched.middleRows(begin, rows).setZero();
  ws.du.middleRows(begin, rows).setZero();
  ws.dv.middleRows(begin, rows).setZero();
  ws.d_o.middleRows(begin, rows).setZero();
  ws.d_address.middleRows(begin, rows).setZero();

  // Step 5, per line (mean field is per element, below).
  if (control_ == control_mode::per_line) {
    control_per_line_backward(dstate.counter, dstate.registers, ws, dnext.counter, cache, state,
                              programs, layout_, slice);
  }

  // Steps 6, 4, 3 in reverse, per element; the ALU's share of o goes to the ALU below.
  for (index b = begin; b < end; ++b) {
    const S* fetched = cache.fetched.data() + b * W;
    const S* f = fetched + layout_.op();
    const S* k = fetched + layout_.imm();
    const S* u = cache.u.data() + b * n;
    const S* c = state.counter.data() + b * L;
    const S* mem = state.memory.data() + b * M * n;
    const S* e = cache.address.data() + b * M;
    S* d_fetched = ws.d_fetched.data() + b * W;
    S* df = d_fetched + layout_.op();
    S* dk = d_fetched + layout_.imm();
    S* du = ws.du.data() + b * n;
    S* de = ws.d_address.data() + b * M;
    S* d_o = ws.d_o.data() + b * n;
    S* dc = dstate.counter.data() + b * L;
    S* dmem = dstate.memory.data() + b * M * n;

    df[col_halt] += dnext.halted[static_cast<std::size_t>(b)];
    if (control_ == control_mode::mean_field) {
      control_mean_field_backward(df, dk, du, dc, ws.d_jump_values.data() + b * n,
                                  dnext.counter.data() + b * L, f, k, u, c, L, n);
    }
    S dw = S(0);
    register_write_backward(dstate.registers.data() + b * R * n, d_fetched + layout_.dst(), &dw,
                            d_o, dnext.registers.data() + b * R * n,
                            state.registers.data() + b * R * n, fetched + layout_.dst(),
                            write_mass(f), cache.o.data() + b * n, R, n);
    for (alu::opcode op : value_ops) df[column(op)] += dw;
    const S* read = cache.read.data() + b * n;
    other_value_ops_backward(df, dk, du, dc, d_o, f, k, u, read, c, L, n);
    memory_backward_assign(dmem, de, df + col_write, ws.dv.data() + b * n,
                    dnext.memory.data() + b * M * n, d_o, f[col_read], mem, e, f[col_write],
                    cache.v.data() + b * n, M, n);
    address_backward(du, de, n, M);
  }

  // The ALU on this slice.
  slice.f = cache.f_table.middleRows(begin, rows);
  slice.u = cache.u.middleRows(begin, rows);
  slice.v = cache.v.middleRows(begin, rows);
  slice.dout = ws.d_o.middleRows(begin, rows);
  slice.df.setZero(rows, table_ops);
  slice.du.setZero(rows, n);
  slice.dv.setZero(rows, n);
  alu_.backward(slice.df, slice.du, slice.dv, slice.dout, slice.f, slice.u, slice.v);
  ws.d_fetched.block(begin, table_op_offset, rows, table_ops) += slice.df;
  ws.du.middleRows(begin, rows) += slice.du;
  ws.dv.middleRows(begin, rows) += slice.dv;

  // Step 2.
  for (index b = begin; b < end; ++b) {
    S* d_fetched = ws.d_fetched.data() + b * W;
    const S* regs = state.registers.data() + b * R * n;
    const S* fetched = cache.fetched.data() + b * W;
    S* dregs = dstate.registers.data() + b * R * n;
    register_reads_backward(dregs, d_fetched + layout_.a(), d_fetched + layout_.b(),
                            ws.du.data() + b * n, ws.dv.data() + b * n, regs,
                            fetched + layout_.a(), fetched + layout_.b(), R, n);
  }

  // Step 1: the fetch's two products per program (dP over the slice's rows at once, so the
  // product keeps dP's tiles in registers across the rows).
  programs.for_each_in(begin, end, [&](index p, index b0, index nb) {
    if (ws.program_gradients) {
      ws.d_program(programs, p, slice.id).noalias() +=
          state.counter.middleRows(b0, nb).transpose() * ws.d_fetched.middleRows(b0, nb);
    }
    dstate.counter.middleRows(b0, nb).noalias() +=
        ws.d_fetched.middleRows(b0, nb) * programs.of(p).transpose();
  });
}

}  // namespace ncl::machine
