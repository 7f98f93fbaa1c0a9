// The soft machine's step on 16 batch elements at once, batch-innermost ("lanes"): row r of
// a lane buffer holds quantity r of the 16 elements side by side, so every term of ISA.md's
// step is one multiply-add over 16 contiguous values, with no horizontal sum, no gather into
// the ALU's layout and no per-element loop overhead. It is the same computation as the
// per-element step (interpreter_step.hpp), term for term; the tests hold the two together.
// Used for per-line control, the table ALU and a program shared by the batch; the
// interpreter keeps its per-element step for the other cases.
//
// A chunk's state (state_rows rows): registers (R n) | memory (M n) | counter (L) | halted.
// A chunk's step cache (cache_rows rows), what backward reads:
//   fetched (W) | u, v, o (n) | address (M) | read (n) | zero_test, target, jump_weight (L) |
//   jump_registers (R) | values (n)
// Lanes past the batch hold zeros everywhere: a zero counter fetches a zero instruction, and
// every quantity of that lane stays zero.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cstddef>
#include <vector>

#include "ncl/alu/lookup_table.hpp"
#include "ncl/machine/interpreter_cache.hpp"
#include "ncl/machine/interpreter_control.hpp"

namespace ncl::machine::detail {

static_assert(chunk_lanes == alu::lookup_table<float>::lanes &&
                  chunk_lanes == alu::lookup_table<double>::lanes,
              "a chunk is one call of the table ALU's lane path");

/// lanes_by_scalars on outputs [j0, j0 + width), width <= block (a whole block of 8: the
/// width is known at compile time and the accumulators stay in vector registers).
template <bool add, index block, class S>
void lanes_by_scalars_block(S* out, const S* x, index x_stride, const S* m, index m_stride,
                            index count, index j0, index width) {
  using kit = lane_kit<S>;
  using array = typename kit::array;
  const index w = block == 8 ? block : std::min(block, width);
  array acc[block];
  for (index t = 0; t < w; ++t) acc[t] = add ? array(kit::at(out, j0 + t)) : array::Zero();
  for (index i = 0; i < count; ++i) {
    const array xi = kit::at(x, i * x_stride);
    const S* row = m + i * m_stride + j0;
    for (index t = 0; t < w; ++t) acc[t] += xi * row[t];
  }
  for (index t = 0; t < w; ++t) kit::at(out, j0 + t) = acc[t];
}

/// out (cols rows) (+)= sum_i x_i m(i, :): x_i the lane row x + i x_stride, m (count, cols)
/// scalars `m_stride` apart per row, each broadcast over the lanes.
template <bool add, class S>
void lanes_by_scalars(S* out, const S* x, index x_stride, const S* m, index m_stride,
                      index count, index cols) {
  index j0 = 0;
  for (; j0 + 8 <= cols; j0 += 8) {
    lanes_by_scalars_block<add, 8>(out, x, x_stride, m, m_stride, count, j0, 8);
  }
  if (j0 < cols) lanes_by_scalars_block<add, 7>(out, x, x_stride, m, m_stride, count, j0, cols - j0);
}

/// out (cols rows) (+)= sum_i w_i X[i stride + j]: lane weights times lane rows.
template <bool add, class S>
void lanes_by_lanes(S* out, const S* w, const S* X, index stride, index count, index cols) {
  using kit = lane_kit<S>;
  using array = typename kit::array;
  constexpr index block = 8;
  for (index j0 = 0; j0 < cols; j0 += block) {
    const index width = std::min(block, cols - j0);
    array acc[block];
    for (index t = 0; t < width; ++t) acc[t] = add ? array(kit::at(out, j0 + t)) : array::Zero();
    if (width == block) {
      for (index i = 0; i < count; ++i) {
        const array wi = kit::at(w, i);
        for (index t = 0; t < block; ++t) acc[t] += wi * kit::at(X, i * stride + j0 + t);
      }
    } else {
      for (index i = 0; i < count; ++i) {
        const array wi = kit::at(w, i);
        for (index t = 0; t < width; ++t) acc[t] += wi * kit::at(X, i * stride + j0 + t);
      }
    }
    for (index t = 0; t < width; ++t) kit::at(out, j0 + t) = acc[t];
  }
}

/// The three mixtures of the registers one step needs, in one pass over them:
/// u = sum_r a_r regs[r], v = sum_r b_r regs[r], values += sum_r jr_r regs[r] (a, b, jr
/// lane rows, regs (R n) lane rows).
template <class S>
void lane_register_mixtures(S* u, S* v, S* values, const S* a, const S* b, const S* jr,
                            const S* regs, index R, index n) {
  using kit = lane_kit<S>;
  using array = typename kit::array;
  constexpr index block = sizeof(S) == 4 ? 8 : 4;  // 3 block accumulators in vector registers
  for (index j0 = 0; j0 < n; j0 += block) {
    const index width = std::min(block, n - j0);
    array au[block], av[block], aj[block];
    for (index t = 0; t < width; ++t) {
      au[t].setZero();
      av[t].setZero();
      aj[t] = kit::at(values, j0 + t);
    }
    for (index r = 0; r < R; ++r) {
      const array wa = kit::at(a, r), wb = kit::at(b, r), wj = kit::at(jr, r);
      const S* row = regs + (r * n + j0) * kit::K;
      if (width == block) {
        for (index t = 0; t < block; ++t) {
          const array x = kit::at(row, t);
          au[t] += wa * x;
          av[t] += wb * x;
          aj[t] += wj * x;
        }
      } else {
        for (index t = 0; t < width; ++t) {
          const array x = kit::at(row, t);
          au[t] += wa * x;
          av[t] += wb * x;
          aj[t] += wj * x;
        }
      }
    }
    for (index t = 0; t < width; ++t) {
      kit::at(u, j0 + t) = au[t];
      kit::at(v, j0 + t) = av[t];
      kit::at(values, j0 + t) = aj[t];
    }
  }
}

/// Step 4 on values [j0, j0 + width) (width <= block) of every cell: read = sum_m e_m mem[m],
/// next[m] = (1 - p e_m) mem[m] + p e_m v, with the read's sums and v in vector registers.
template <index block, class S>
void lane_memory_block(S* read, S* next_mem, const S* mem, const S* e,
                       const typename lane_kit<S>::array& p, const S* v, index j0, index width,
                       index M, index n) {
  using kit = lane_kit<S>;
  using array = typename kit::array;
  array acc[block], vj[block];
  const index count = block == 8 ? block : std::min(block, width);  // 8: a whole block
  for (index t = 0; t < count; ++t) {
    acc[t].setZero();
    vj[t] = kit::at(v, j0 + t);
  }
  for (index m = 0; m < M; ++m) {
    const array em = kit::at(e, m);
    const array put = p * em, keep = S(1) - put;
    const index row = m * n + j0;
    for (index t = 0; t < count; ++t) {
      const array x = kit::at(mem, row + t);
      acc[t] += em * x;
      kit::at(next_mem, row + t) = keep * x + put * vj[t];
    }
  }
  for (index t = 0; t < count; ++t) kit::at(read, j0 + t) = acc[t];
}

/// One ISA step on a chunk of 16 elements (per-line control, the table ALU, the shared
/// packed program P with its control rows G (6, L) and a^T (R, L)): next = step(state),
/// cache = what backward needs.
template <class S>
void lane_step_forward(S* next, S* cache, const S* state, const matrix<S>& P,
                       const matrix<S>& G, const matrix<S>& a_t, const program_layout& program,
                       const alu::lookup_table<S>& table, const lane_layout& lay) {
  using kit = lane_kit<S>;
  using array = typename kit::array;
  const index n = lay.n, R = lay.R, M = lay.M, L = lay.L, W = lay.W;
  const S* regs = state + lay.registers() * kit::K;
  const S* mem = state + lay.memory() * kit::K;
  const S* c = state + lay.counter() * kit::K;
  S* F = cache + lay.fetched() * kit::K;
  S* u = cache + lay.u() * kit::K;
  S* v = cache + lay.v() * kit::K;
  S* o = cache + lay.o() * kit::K;
  S* e = cache + lay.address() * kit::K;
  S* read = cache + lay.read() * kit::K;
  auto f = [&](index col) { return kit::at(F, program.op() + col); };

  S* z = cache + lay.zero_test() * kit::K;
  S* target = cache + lay.target() * kit::K;
  S* jumping = cache + lay.jump_weight() * kit::K;
  S* jump_registers = cache + lay.jump_registers() * kit::K;
  S* values = cache + lay.values() * kit::K;
  S* next_c = next + lay.counter() * kit::K;
  // Step 5's per-line weights first (interpreter_control.hpp): they need only the counter
  // and the registers, so the registers' three mixtures below share one pass.
  // z_l = sum_r a[l]_r R[r][0].
  lanes_by_scalars<false>(z, regs, n, a_t.data(), L, R, L);
  {
    const S* jump = G.data() + row_jump * L;
    const S* jz = G.data() + row_jz * L;
    const S* jnz = G.data() + row_jnz * L;
    const S* rest = G.data() + row_rest * L;
    const S* jr = G.data() + row_jr * L;
    const S* halt = G.data() + row_halt * L;
    array moved_before = array::Zero();  // c_{l-1} q_{l-1}, moved to line l
    for (index l = 0; l < L; ++l) {
      const array cl = kit::at(c, l), zl = kit::at(z, l);
      kit::at(target, l) = cl * (jump[l] + jz[l] * zl + jnz[l] * (S(1) - zl));
      kit::at(jumping, l) = cl * jr[l];
      const array moved = cl * (jz[l] * (S(1) - zl) + jnz[l] * zl + rest[l]);
      if (l > 0) kit::at(next_c, l) = cl * halt[l] + moved_before;
      moved_before = moved;
    }
    kit::at(next_c, 0) = kit::at(c, 0) * halt[0] + moved_before;
  }
  // The values jumped to: sum_l target_l imm[l], and below + sum_r (sum_l jumping_l a[l]_r) R[r].
  lanes_by_scalars<false>(values, target, 1, P.data() + program.imm(), W, L, n);
  lanes_by_scalars<false>(jump_registers, jumping, 1, P.data() + program.a(), W, L, R);

  // Step 1: fetch, F = sum_l c_l P[l].
  lanes_by_scalars<false>(F, c, 1, P.data(), W, L, program.imm() + n);  // not the padding
  // Step 2: operands u, v (and JR's values).
  lane_register_mixtures(u, v, values, F + program.a() * kit::K, F + program.b() * kit::K,
                         jump_registers, regs, R, n);
  // Step 3: the table ALU's ops, then the other value ops.
  table.forward_lanes(o, F + (program.op() + table_op_offset) * kit::K, u, v);
  // addr(u): value j addresses cell j mod M.
  for (index m = 0; m < M; ++m) kit::at(e, m).setZero();
  for (index j0 = 0; j0 < n; j0 += M) {
    for (index m = 0; m < std::min(M, n - j0); ++m) kit::at(e, m) += kit::at(u, j0 + m);
  }
  // Step 4: memory, read = sum_m e_m mem[m]; next mem[m] = (1 - p e_m) mem[m] + p e_m v.
  {
    S* next_mem = next + lay.memory() * kit::K;
    const array p = f(col_write);
    index j0 = 0;
    for (; j0 + 8 <= n; j0 += 8) {
      lane_memory_block<8>(read, next_mem, mem, e, p, v, j0, 8, M, n);
    }
    if (j0 < n) lane_memory_block<7>(read, next_mem, mem, e, p, v, j0, n - j0, M, n);
  }
  {
    const array f_set = f(col_set), f_mov = f(col_mov), f_inc = f(col_inc), f_dec = f(col_dec),
                f_read = f(col_read), f_store = f(col_store), f_call = f(col_call);
    const S* k = F + program.imm() * kit::K;
    for (index j = 0; j < n; ++j) {
      kit::at(o, j) += f_set * kit::at(k, j) + f_mov * kit::at(u, j) +
                       f_read * kit::at(read, j) + f_inc * kit::at(u, j == 0 ? n - 1 : j - 1) +
                       f_dec * kit::at(u, j + 1 == n ? 0 : j + 1);
    }
    for (index l = 0; l < L; ++l) {
      kit::at(o, l) += f_store * kit::at(c, l) + f_call * kit::at(c, l == 0 ? L - 1 : l - 1);
    }
  }
  // Register writes: next[r] = (1 - w d_r) regs[r] + d_r o.
  {
    array w = array::Zero();
    for (alu::opcode op : value_ops) w += f(column(op));
    S* next_regs = next + lay.registers() * kit::K;
    for (index r = 0; r < R; ++r) {
      const array put = kit::at(F, program.dst() + r), keep = S(1) - w * put;
      for (index j = 0; j < n; ++j) {
        kit::at(next_regs, r * n + j) = keep * kit::at(regs, r * n + j) + put * kit::at(o, j);
      }
    }
  }
  kit::at(next, lay.halted()) = f(col_halt);  // step 6

  // Step 5: c' += lines(values): value j goes to line j mod L.
  for (index j0 = 0; j0 < n; j0 += L) {
    for (index l = 0; l < std::min(L, n - j0); ++l) kit::at(next_c, l) += kit::at(values, j0 + l);
  }
}

/// Per lane, sum_j x[j] y[j] over `count` lane rows.
template <class S>
typename lane_kit<S>::array lanes_dot(const S* x, const S* y, index count) {
  using kit = lane_kit<S>;
  using array = typename kit::array;
  array acc0 = array::Zero(), acc1 = array::Zero();
  index j = 0;
  for (; j + 2 <= count; j += 2) {
    acc0 += kit::at(x, j) * kit::at(y, j);
    acc1 += kit::at(x, j + 1) * kit::at(y, j + 1);
  }
  if (j < count) acc0 += kit::at(x, j) * kit::at(y, j);
  return acc0 + acc1;
}

/// The backward of lane_step_forward for one chunk: dstate (state rows) = d loss / d state
/// given dnext = d loss / d next state; `grads` (null: frozen program) collects the program's
/// gradient. scratch holds lane_backward_rows(lay) rows. Pt is P's fields transposed (W', L).
inline index lane_backward_rows(const lane_layout& lay) {
  return lay.W + 4 * lay.n + lay.M + 2 * lay.R + 3 * lay.L;
}

template <class S>
void lane_step_backward(S* dstate, const S* dnext, const S* cache, const S* state,
                        const matrix<S>& P, const matrix<S>& Pt, const matrix<S>& G,
                        const matrix<S>& a_t, const matrix<S>& imm_t,
                        const program_layout& program, const alu::lookup_table<S>& table,
                        const lane_layout& lay, S* scratch, lane_program_grads<S>* grads) {
  using kit = lane_kit<S>;
  using array = typename kit::array;
  constexpr index K = kit::K;
  const index n = lay.n, R = lay.R, M = lay.M, L = lay.L, W = lay.W;
  const index fields = program.imm() + n;
  const S* regs = state + lay.registers() * K;
  const S* mem = state + lay.memory() * K;
  const S* c = state + lay.counter() * K;
  const S* F = cache + lay.fetched() * K;
  const S* u = cache + lay.u() * K;
  const S* v = cache + lay.v() * K;
  const S* o = cache + lay.o() * K;
  const S* e = cache + lay.address() * K;
  const S* read = cache + lay.read() * K;
  const S* z = cache + lay.zero_test() * K;
  const S* target = cache + lay.target() * K;
  const S* jumping = cache + lay.jump_weight() * K;
  const S* jump_registers = cache + lay.jump_registers() * K;
  const S* dn_regs = dnext + lay.registers() * K;
  const S* dn_mem = dnext + lay.memory() * K;
  const S* dn_c = dnext + lay.counter() * K;
  S* dregs = dstate + lay.registers() * K;
  S* dmem = dstate + lay.memory() * K;
  S* dc = dstate + lay.counter() * K;
  // scratch: dF (W) | du, dv, d_o, dvalues (n) | de (M) | djr (R) | d_target,
  // d_jump, dz (L) | tmp_r (R)
  S* dF = scratch;
  S* du = dF + W * K;
  S* dv = du + n * K;
  S* d_o = dv + n * K;
  S* dvalues = d_o + n * K;
  S* de = dvalues + n * K;
  S* djr = de + M * K;
  S* d_target = djr + R * K;
  S* d_jump = d_target + L * K;
  S* dz = d_jump + L * K;
  S* tmp_r = dz + L * K;
  std::fill(dF, dF + (W + 4 * n + M) * K, S(0));
  std::fill(dregs, dregs + R * n * K, S(0));
  std::fill(dc, dc + L * K, S(0));
  kit::at(dstate, lay.halted()).setZero();  // h' does not depend on h
  auto f = [&](index col) { return kit::at(F, program.op() + col); };
  auto d_f = [&](index col) { return kit::at(dF, program.op() + col); };

  d_f(col_halt) += kit::at(dnext, lay.halted());  // step 6

  // Step 5, per line (interpreter_control.hpp's control_per_line_backward).
  for (index j0 = 0; j0 < n; j0 += L) {  // dvalues = lines^T(dnext counter)
    for (index l = 0; l < std::min(L, n - j0); ++l) kit::at(dvalues, j0 + l) = kit::at(dn_c, l);
  }
  for (index r = 0; r < R; ++r) {
    const array weight = kit::at(jump_registers, r);
    for (index j = 0; j < n; ++j) kit::at(dregs, r * n + j) += weight * kit::at(dvalues, j);
    kit::at(djr, r) = lanes_dot(regs + r * n * K, dvalues, n);
  }
  lanes_by_scalars<false>(d_target, dvalues, 1, imm_t.data(), L, n, L);
  lanes_by_scalars<false>(d_jump, djr, 1, a_t.data(), L, R, L);
  {
    const S* jump = G.data() + row_jump * L;
    const S* jz = G.data() + row_jz * L;
    const S* jnz = G.data() + row_jnz * L;
    const S* rest = G.data() + row_rest * L;
    const S* jr = G.data() + row_jr * L;
    const S* halt = G.data() + row_halt * L;
    S* sums = grads != nullptr ? grads->line_sums.data() : nullptr;
    for (index l = 0; l < L; ++l) {
      const array C = kit::at(c, l), Z = kit::at(z, l), DT = kit::at(d_target, l),
                  DJ = kit::at(d_jump, l), DN = kit::at(dn_c, l),
                  DON = kit::at(dn_c, l + 1 == L ? 0 : l + 1);
      kit::at(dc, l) += (jump[l] + jz[l] * Z + jnz[l] * (S(1) - Z)) * DT + jr[l] * DJ +
                        halt[l] * DN + (jz[l] * (S(1) - Z) + jnz[l] * Z + rest[l]) * DON;
      const array dsq = C * DT - C * DON;
      if (sums != nullptr) {
        kit::at(sums, 0 * L + l) += C * DN - C * DON;
        kit::at(sums, 1 * L + l) += C * DJ - C * DON;
        kit::at(sums, 2 * L + l) += dsq;
        kit::at(sums, 3 * L + l) += dsq * Z;
        kit::at(sums, 4 * L + l) += dsq * (S(1) - Z);
      }
      kit::at(dz, l) = dsq * (jz[l] - jnz[l]);
    }
  }
  // d R[r][0] += sum_l dz_l a[l]_r
  lanes_by_scalars<false>(tmp_r, dz, 1, P.data() + program.a(), P.cols(), L, R);
  for (index r = 0; r < R; ++r) kit::at(dregs, r * n) += kit::at(tmp_r, r);
  if (grads != nullptr) {
    grads->put(grads->target, target, 1, L);
    grads->put(grads->dvalues, dvalues, 1, n);
    grads->put(grads->jumping, jumping, 1, L);
    grads->put(grads->djr, djr, 1, R);
    grads->put(grads->dz, dz, 1, L);
    grads->put(grads->r0, regs, n, R);
  }

  // Register writes: next[r] = (1 - w d_r) regs[r] + d_r o.
  {
    array w = array::Zero();
    for (alu::opcode op : value_ops) w += f(column(op));
    array dw = array::Zero();
    for (index r = 0; r < R; ++r) {
      const array put = kit::at(F, program.dst() + r), keep = S(1) - w * put;
      array old_sum = array::Zero(), new_sum = array::Zero();
      for (index j = 0; j < n; ++j) {
        const array g = kit::at(dn_regs, r * n + j);
        old_sum += kit::at(regs, r * n + j) * g;
        new_sum += kit::at(o, j) * g;
        kit::at(dregs, r * n + j) += keep * g;
        kit::at(d_o, j) += put * g;
      }
      kit::at(dF, program.dst() + r) += new_sum - w * old_sum;
      dw -= put * old_sum;
    }
    for (alu::opcode op : value_ops) d_f(column(op)) += dw;
  }
  // The other value ops.
  {
    const S* k = F + program.imm() * K;
    S* dk = dF + program.imm() * K;
    const array f_set = f(col_set), f_mov = f(col_mov), f_inc = f(col_inc), f_dec = f(col_dec),
                f_store = f(col_store), f_call = f(col_call);
    array d_set = array::Zero(), d_mov = array::Zero(), d_read = array::Zero(),
          d_inc = array::Zero(), d_dec = array::Zero();
    for (index j = 0; j < n; ++j) {
      const array g = kit::at(d_o, j);
      const index before = j == 0 ? n - 1 : j - 1, after = j + 1 == n ? 0 : j + 1;
      d_set += kit::at(k, j) * g;
      d_mov += kit::at(u, j) * g;
      d_read += kit::at(read, j) * g;
      d_inc += kit::at(u, before) * g;
      d_dec += kit::at(u, after) * g;
      kit::at(dk, j) += f_set * g;
      kit::at(du, j) += f_mov * g + f_inc * kit::at(d_o, after) + f_dec * kit::at(d_o, before);
    }
    d_f(col_set) += d_set;
    d_f(col_mov) += d_mov;
    d_f(col_read) += d_read;
    d_f(col_inc) += d_inc;
    d_f(col_dec) += d_dec;
    array d_store = array::Zero(), d_call = array::Zero();
    for (index l = 0; l < L; ++l) {
      const array g = kit::at(d_o, l);
      d_store += kit::at(c, l) * g;
      d_call += kit::at(c, l == 0 ? L - 1 : l - 1) * g;
      kit::at(dc, l) += f_store * g + f_call * kit::at(d_o, l + 1 == L ? 0 : l + 1);
    }
    d_f(col_store) += d_store;
    d_f(col_call) += d_call;
  }
  // Memory: read = sum_m e_m mem[m]; next[m] = (1 - p e_m) mem[m] + p e_m v.
  {
    const array p = f(col_write), f_read = f(col_read);
    array dp = array::Zero();
    for (index m = 0; m < M; ++m) {
      const array em = kit::at(e, m), put = p * em, keep = S(1) - put, put_read = f_read * em;
      array change = array::Zero(), read_dot = array::Zero();
      for (index j = 0; j < n; ++j) {
        const array g = kit::at(dn_mem, m * n + j), x = kit::at(mem, m * n + j),
                    dj = kit::at(d_o, j);
        change += g * (kit::at(v, j) - x);
        read_dot += x * dj;
        kit::at(dmem, m * n + j) = keep * g + put_read * dj;
        kit::at(dv, j) += put * g;
      }
      kit::at(de, m) += p * change + f_read * read_dot;
      dp += em * change;
    }
    d_f(col_write) += dp;
  }
  for (index j0 = 0; j0 < n; j0 += M) {  // addr^T
    for (index m = 0; m < std::min(M, n - j0); ++m) kit::at(du, j0 + m) += kit::at(de, m);
  }
  // The table ALU.
  table.backward_lanes(dF + (program.op() + table_op_offset) * K, du, dv, d_o,
                       F + (program.op() + table_op_offset) * K, u, v);
  // Step 2: the reads.
  for (index r = 0; r < R; ++r) {
    const array wa = kit::at(F, program.a() + r), wb = kit::at(F, program.b() + r);
    array da = array::Zero(), db = array::Zero();
    for (index j = 0; j < n; ++j) {
      const array x = kit::at(regs, r * n + j), gu = kit::at(du, j), gv = kit::at(dv, j);
      da += x * gu;
      db += x * gv;
      kit::at(dregs, r * n + j) += wa * gu + wb * gv;
    }
    kit::at(dF, program.a() + r) += da;
    kit::at(dF, program.b() + r) += db;
  }
  // Step 1: the fetch, dc_l += P[l] . dF.
  lanes_by_scalars<true>(dc, dF, 1, Pt.data(), L, fields, L);
  if (grads != nullptr) {
    grads->put(grads->c, c, 1, L);
    grads->put(grads->dF, dF, 1, fields);
    ++grads->used;
  }
}

/// lanes (values rows, 16) = the first `values` entries of `count` rows `stride` apart,
/// transposed (zero past count), through a 16 x 16 tile: contiguous loads and stores.
template <class S>
void rows_to_lanes(S* lanes, const S* rows, index stride, index count, index values) {
  constexpr index K = chunk_lanes;
  for (index i0 = 0; i0 < values; i0 += K) {
    const index width = std::min(K, values - i0);
    S tile[K][K] = {};  // tile[w][i]
    for (index w = 0; w < count; ++w) {
      std::copy(rows + w * stride + i0, rows + w * stride + i0 + width, tile[w]);
    }
    for (index i = 0; i < width; ++i) {
      for (index w = 0; w < K; ++w) lanes[(i0 + i) * K + w] = tile[w][i];
    }
  }
}

/// The inverse of rows_to_lanes for the first `count` lanes (or += with `add`).
template <bool add = false, class S>
void lanes_to_rows(S* rows, const S* lanes, index stride, index count, index values) {
  constexpr index K = chunk_lanes;
  for (index i0 = 0; i0 < values; i0 += K) {
    const index width = std::min(K, values - i0);
    S tile[K][K];  // tile[w][i]
    for (index i = 0; i < width; ++i) {
      for (index w = 0; w < K; ++w) tile[w][i] = lanes[(i0 + i) * K + w];
    }
    for (index w = 0; w < count; ++w) {
      S* out = rows + w * stride + i0;
      for (index i = 0; i < width; ++i) out[i] = (add ? out[i] : S(0)) + tile[w][i];
    }
  }
}

/// Copies batch rows [b0, b0 + count) of a state into a chunk's lanes (zero past count).
template <class S>
void load_lanes(S* lanes, const soft_state<S>& state, index b0, index count,
                const lane_layout& lay) {
  constexpr index K = chunk_lanes;
  const index regs = lay.R * lay.n, mem = lay.M * lay.n;
  rows_to_lanes(lanes + lay.registers() * K, state.registers.data() + b0 * regs, regs, count,
                regs);
  rows_to_lanes(lanes + lay.memory() * K, state.memory.data() + b0 * mem, mem, count, mem);
  rows_to_lanes(lanes + lay.counter() * K, state.counter.data() + b0 * lay.L, lay.L, count,
                lay.L);
  rows_to_lanes(lanes + lay.halted() * K, state.halted.data() + b0, 1, count, 1);
}

/// The inverse of load_lanes for the chunk's real lanes.
template <class S>
void store_lanes(soft_state<S>& state, const S* lanes, index b0, index count,
                 const lane_layout& lay) {
  constexpr index K = chunk_lanes;
  const index regs = lay.R * lay.n, mem = lay.M * lay.n;
  lanes_to_rows(state.registers.data() + b0 * regs, lanes + lay.registers() * K, regs, count,
                regs);
  lanes_to_rows(state.memory.data() + b0 * mem, lanes + lay.memory() * K, mem, count, mem);
  lanes_to_rows(state.counter.data() + b0 * lay.L, lanes + lay.counter() * K, lay.L, count,
                lay.L);
  lanes_to_rows(state.halted.data() + b0, lanes + lay.halted() * K, 1, count, 1);
}

/// d registers, memory and counter of batch rows [b0, b0 + count) += the chunk's lanes.
template <class S>
void add_lanes(soft_state<S>& state, const S* lanes, index b0, index count,
               const lane_layout& lay) {
  constexpr index K = chunk_lanes;
  const index regs = lay.R * lay.n, mem = lay.M * lay.n;
  lanes_to_rows<true>(state.registers.data() + b0 * regs, lanes + lay.registers() * K, regs,
                      count, regs);
  lanes_to_rows<true>(state.memory.data() + b0 * mem, lanes + lay.memory() * K, mem, count, mem);
  lanes_to_rows<true>(state.counter.data() + b0 * lay.L, lanes + lay.counter() * K, lay.L,
                      count, lay.L);
}

/// True when the chunk's first `count` lanes have halted (h exactly 1, ISA.md step 6).
template <class S>
bool lanes_halted(const S* lanes, index count, const lane_layout& lay) {
  const S* h = lanes + lay.halted() * chunk_lanes;
  return std::all_of(h, h + count, [](S x) { return x == S(1); });
}

}  // namespace ncl::machine::detail
