// One step of the soft interpreter, forward and backward (ISA.md "One step"); the class and
// its documentation are in interpreter.hpp.
#pragma once

#include "ncl/machine/interpreter.hpp"

namespace ncl::machine {

namespace detail {

inline constexpr index col_set = column(alu::opcode::SET);
inline constexpr index col_mov = column(alu::opcode::MOV);
inline constexpr index col_inc = column(alu::opcode::INC);
inline constexpr index col_dec = column(alu::opcode::DEC);
inline constexpr index col_read = column(alu::opcode::READ);
inline constexpr index col_store = column(alu::opcode::STORE);
inline constexpr index col_write = column(alu::opcode::WRITE);

/// w = sum of f over the value ops: the probability that this step writes a register.
template <class S>
S write_mass(const S* f) {
  S w = S(0);
  for (alu::opcode op : value_ops) w += f[column(op)];
  return w;
}

/// o (n) += the value ops of ISA.md step 3 that the ALU does not compute: SET k, MOV u,
/// INC/DEC u shifted, READ, STORE val(c), CALL val(inc(c)) (c over L <= n lines).
template <class S>
void other_value_ops_forward(S* o, const S* f, const S* k, const S* u, const S* read,
                             const S* c, index L, index n) {
  const S f_set = f[col_set], f_mov = f[col_mov], f_inc = f[col_inc], f_dec = f[col_dec];
  const S f_read = f[col_read];
  for (index j = 0; j < n; ++j) {
    const S inc = u[j == 0 ? n - 1 : j - 1];  // INC: value j comes from j - 1
    const S dec = u[j == n - 1 ? 0 : j + 1];  // DEC: value j comes from j + 1
    o[j] += f_set * k[j] + f_mov * u[j] + f_inc * inc + f_dec * dec + f_read * read[j];
  }
  const S f_store = f[col_store], f_call = f[col_call];
  for (index l = 0; l < L; ++l) {
    o[l] += f_store * c[l] + f_call * c[l == 0 ? L - 1 : l - 1];  // CALL: ra = next line
  }
}

/// Backward of other_value_ops_forward except READ's memory part: df, dk, du, dc add;
/// returns nothing for READ but df[READ] (its memory gradient is memory_read_backward's).
template <class S>
void other_value_ops_backward(S* df, S* dk, S* du, S* dc, const S* dout, const S* f,
                              const S* k, const S* u, const S* read, const S* c, index L,
                              index n) {
  const S f_set = f[col_set], f_mov = f[col_mov], f_inc = f[col_inc], f_dec = f[col_dec];
  S d_set = S(0), d_mov = S(0), d_inc = S(0), d_dec = S(0), d_read = S(0);
  for (index j = 0; j < n; ++j) {
    const index from_inc = j == 0 ? n - 1 : j - 1;
    const index from_dec = j == n - 1 ? 0 : j + 1;
    const S g = dout[j];
    d_set += k[j] * g;
    d_mov += u[j] * g;
    d_inc += u[from_inc] * g;
    d_dec += u[from_dec] * g;
    d_read += read[j] * g;
    dk[j] += f_set * g;
    du[j] += f_mov * g;
    du[from_inc] += f_inc * g;
    du[from_dec] += f_dec * g;
  }
  const S f_store = f[col_store], f_call = f[col_call];
  S d_store = S(0), d_call = S(0);
  for (index l = 0; l < L; ++l) {
    const index from_call = l == 0 ? L - 1 : l - 1;
    d_store += c[l] * dout[l];
    d_call += c[from_call] * dout[l];
    dc[l] += f_store * dout[l];
    dc[from_call] += f_call * dout[l];
  }
  df[col_set] += d_set;
  df[col_mov] += d_mov;
  df[col_inc] += d_inc;
  df[col_dec] += d_dec;
  df[col_read] += d_read;
  df[col_store] += d_store;
  df[col_call] += d_call;
}

}  // namespace detail

template <class S>
void soft_interpreter<S>::step_forward(soft_state<S>& next, step_cache<S>& cache,
                                       const soft_state<S>& state,
                                       const detail::packed_programs<S>& programs) const {
  using namespace detail;
  const index B = state.batch(), n = shape_.n, R = shape_.registers, M = shape_.memory,
              L = shape_.lines, W = layout_.width();
  const bool threads = parallel(B);

  // Step 1: fetch f | d | alpha | beta | k, one product per program.
  cache.fetched.resize(B, W);
  for (index p = 0; p < programs.count(); ++p) {
    const index b0 = programs.first(p), nb = programs.rows(p);
    cache.fetched.middleRows(b0, nb).noalias() = state.counter.middleRows(b0, nb) * programs.of(p);
  }

  // Step 2: operands u, v; the ALU's share of f.
  cache.u.resize(B, n);
  cache.v.resize(B, n);
  cache.f_table.resize(B, static_cast<index>(alu::table_op_count));
  NCL_MACHINE_PARALLEL_FOR(threads)
  for (index b = 0; b < B; ++b) {
    const S* regs = state.registers.data() + b * R * n;
    const S* fetched = cache.fetched.data() + b * W;
    register_read_forward(cache.u.data() + b * n, regs, fetched + layout_.a(), R, n);
    register_read_forward(cache.v.data() + b * n, regs, fetched + layout_.b(), R, n);
    for (index i = 0; i < cache.f_table.cols(); ++i) {
      cache.f_table(b, i) = fetched[table_op_offset + i];
    }
  }

  // Step 3: o = the ALU's table ops + the other value ops; then the writes (steps 3, 4).
  alu_.forward(cache.o, cache.f_table, cache.u, cache.v);
  cache.address.resize(B, M);
  cache.read.resize(B, n);
  next.registers.resize(B, R * n);
  next.memory.resize(B, M * n);
  next.counter.resize(B, L);
  next.halted.resize(static_cast<std::size_t>(B));
  NCL_MACHINE_PARALLEL_FOR(threads)
  for (index b = 0; b < B; ++b) {
    const S* fetched = cache.fetched.data() + b * W;
    const S* f = fetched + layout_.op();
    const S* u = cache.u.data() + b * n;
    const S* c = state.counter.data() + b * L;
    const S* mem = state.memory.data() + b * M * n;
    S* e = cache.address.data() + b * M;
    S* read = cache.read.data() + b * n;
    S* o = cache.o.data() + b * n;
    address_forward(e, u, n, M);
    memory_read_forward(read, mem, e, M, n);
    other_value_ops_forward(o, f, fetched + layout_.imm(), u, read, c, L, n);
    register_write_forward(next.registers.data() + b * R * n, state.registers.data() + b * R * n,
                           fetched + layout_.dst(), write_mass(f), o, R, n);
    memory_write_forward(next.memory.data() + b * M * n, mem, e, f[col_write],
                         cache.v.data() + b * n, M, n);
    if (control_ == control_mode::mean_field) {
      control_mean_field_forward(next.counter.data() + b * L, f, fetched + layout_.imm(), u, c, L,
                                 n);
    }
    next.halted[static_cast<std::size_t>(b)] = f[col_halt];  // step 6
  }

  // Step 5, per line.
  if (control_ == control_mode::per_line) {
    control_per_line_forward(next.counter, cache, state, programs, layout_, threads);
  }
}

template <class S>
void soft_interpreter<S>::step_backward(soft_state<S>& dstate, backward_workspace<S>& ws,
                                        const soft_state<S>& dnext, const step_cache<S>& cache,
                                        const soft_state<S>& state,
                                        const detail::packed_programs<S>& programs) const {
  using namespace detail;
  const index B = state.batch(), n = shape_.n, R = shape_.registers, M = shape_.memory,
              L = shape_.lines, W = layout_.width();
  const bool threads = parallel(B);
  ws.d_fetched.setZero(B, W);
  ws.du.setZero(B, n);
  ws.dv.setZero(B, n);
  ws.d_o.setZero(B, n);
  ws.df_table.setZero(B, static_cast<index>(alu::table_op_count));
  ws.d_address.setZero(B, M);

  // Step 5, per line (mean field is per element, below).
  if (control_ == control_mode::per_line) {
    control_per_line_backward(dstate.counter, dstate.registers, ws, dnext.counter, cache, state,
                              programs, layout_, threads);
  } else {
    ws.d_jump_values.resize(B, n);
  }

  // Steps 6, 4, 3 in reverse, per element; the ALU's share of o goes to the ALU below.
  NCL_MACHINE_PARALLEL_FOR(threads)
  for (index b = 0; b < B; ++b) {
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
    memory_write_backward(dmem, de, df + col_write, ws.dv.data() + b * n,
                          dnext.memory.data() + b * M * n, mem, e, f[col_write],
                          cache.v.data() + b * n, M, n);
    S dw = S(0);
    register_write_backward(dstate.registers.data() + b * R * n, d_fetched + layout_.dst(), &dw,
                            d_o, dnext.registers.data() + b * R * n,
                            state.registers.data() + b * R * n, fetched + layout_.dst(),
                            write_mass(f), cache.o.data() + b * n, R, n);
    for (alu::opcode op : value_ops) df[column(op)] += dw;
    const S* read = cache.read.data() + b * n;
    other_value_ops_backward(df, dk, du, dc, d_o, f, k, u, read, c, L, n);
    memory_read_backward(dmem, de, d_o, f[col_read], mem, e, M, n);
    address_backward(du, de, n, M);
  }

  alu_.backward(ws.df_table, ws.du, ws.dv, ws.d_o, cache.f_table, cache.u, cache.v);

  // Step 2 and the ALU's share of f.
  NCL_MACHINE_PARALLEL_FOR(threads)
  for (index b = 0; b < B; ++b) {
    S* d_fetched = ws.d_fetched.data() + b * W;
    for (index i = 0; i < ws.df_table.cols(); ++i) {
      d_fetched[table_op_offset + i] += ws.df_table(b, i);
    }
    const S* regs = state.registers.data() + b * R * n;
    const S* fetched = cache.fetched.data() + b * W;
    S* dregs = dstate.registers.data() + b * R * n;
    register_read_backward(dregs, d_fetched + layout_.a(), ws.du.data() + b * n, regs,
                           fetched + layout_.a(), R, n);
    register_read_backward(dregs, d_fetched + layout_.b(), ws.dv.data() + b * n, regs,
                           fetched + layout_.b(), R, n);
  }

  // Step 1: the fetch's two products per program.
  for (index p = 0; p < programs.count(); ++p) {
    const index b0 = programs.first(p), nb = programs.rows(p);
    ws.d_packed[static_cast<std::size_t>(p)].noalias() +=
        state.counter.middleRows(b0, nb).transpose() * ws.d_fetched.middleRows(b0, nb);
    dstate.counter.middleRows(b0, nb).noalias() +=
        ws.d_fetched.middleRows(b0, nb) * programs.of(p).transpose();
  }
}

}  // namespace ncl::machine
