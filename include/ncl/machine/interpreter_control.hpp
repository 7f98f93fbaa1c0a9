// Control, ISA.md step 5: how the instruction counter c moves, in its two forms.
//
// Per line (the default): line l moves only its own share c_l, with its own operand
// u_l = sum_r a[l]_r R[r], z_l = u_l[0], immediate k_l = imm[l] and op distribution g = op[l]:
//   c' = sum_l c_l (s_l lines(k_l) + g_JR lines(u_l) + g_HALT e_l + q_l e_{l+1}),
//   s_l = g_JMP + g_CALL + g_JZ z_l + g_JNZ (1 - z_l)              (the jump to the immediate)
//   q_l = g_JZ (1 - z_l) + g_JNZ z_l + (1 - g_JMP - g_CALL - g_JZ - g_JNZ - g_JR - g_HALT).
// Everything but the scalars s_l, q_l is linear: per element, z = a R0 (R0 (R) each
// register's probability of 0), the jump targets sum_l c_l s_l imm[l] and the JR selection
// sum_l c_l g_JR a[l] are mixtures of the program's rows, vectorised over lines or values.
//
// Mean field (paper eq. 6): the fetched mixture f, k, u moves all of c, with z = u[0]:
//   c' = s lines(k) + f_JR lines(u) + f_HALT c + q inc(c).
// The two agree on one-hot programs.
#pragma once

#include <cstddef>

#include "ncl/machine/interpreter_cache.hpp"
#include "ncl/machine/registers.hpp"

namespace ncl::machine::detail {

/// The scalars of one line's (or the mixture's) control: s weights lines(k), q weights e_{l+1}.
template <class S>
struct control_weights {
  S s, q;
};

template <class S>
control_weights<S> control_scalars(const S* g, S z) {
  const S jump = g[col_jmp] + g[col_call];
  const S s = jump + g[col_jz] * z + g[col_jnz] * (S(1) - z);
  const S rest = S(1) - jump - g[col_jz] - g[col_jnz] - g[col_jr] - g[col_halt];
  const S q = g[col_jz] * (S(1) - z) + g[col_jnz] * z + rest;
  return {s, q};
}

/// Per-line control forward for batch rows [begin, end): next (B, L) rows = c'. Fills the
/// same rows of cache.register_zero, zero_test, target_weight, jump_weight, jump_targets,
/// jump_registers (already sized (B, .)).
template <class S>
void control_per_line_forward(matrix<S>& next, step_cache<S>& cache, const soft_state<S>& state,
                              const packed_programs<S>& programs, const program_layout& layout,
                              index begin, index end) {
  const index L = state.counter.cols(), R = layout.R, n = layout.n;
  for (index b = begin; b < end; ++b) {
    for (index r = 0; r < R; ++r) cache.register_zero(b, r) = state.registers(b, r * n);
  }
  programs.for_each_in(begin, end, [&](index p, index b0, index nb) {
    const matrix<S>& P = programs.of(p);
    const matrix<S>& G = programs.control[static_cast<std::size_t>(p)];
    const S* jump = G.data() + row_jump * L;
    const S* jz = G.data() + row_jz * L;
    const S* jnz = G.data() + row_jnz * L;
    const S* rest = G.data() + row_rest * L;
    const S* jr = G.data() + row_jr * L;
    const S* halt = G.data() + row_halt * L;
    const S* a_t = programs.a_transposed[static_cast<std::size_t>(p)].data();  // (R, L)
    for (index b = b0; b < b0 + nb; ++b) {
      // z_l = sum_r R[r][0] a[l]_r
      mix_rows(cache.zero_test.data() + b * L, a_t, cache.register_zero.data() + b * R, R, L);
      // control_scalars for every line at once, as whole-array expressions (plain loops
      // over several output pointers stay scalar: the compiler cannot rule out aliasing).
      using array = Eigen::Array<S, Eigen::Dynamic, 1>;
      using view = Eigen::Map<const array>;
      using ref = Eigen::Map<array>;
      const view C(state.counter.data() + b * L, L), Z(cache.zero_test.data() + b * L, L),
          JUMP(jump, L), JZ(jz, L), JNZ(jnz, L), REST(rest, L), JR(jr, L), HALT(halt, L);
      S* target = cache.target_weight.data() + b * L;
      S* out = next.data() + b * L;
      ref(target, L) = C * (JUMP + JZ * Z + JNZ * (S(1) - Z));
      ref(cache.jump_weight.data() + b * L, L) = C * JR;
      // c_l g_HALT stays on line l; c_l q_l moves to line l + 1, line L - 1 wrapping to 0.
      // Each entry of out is stored once (a vector read of entries just stored one by one
      // waits for the stores to drain).
      const auto moved = C * (JZ * (S(1) - Z) + JNZ * Z + REST);
      ref(out + 1, L - 1) = (C * HALT).tail(L - 1) + moved.head(L - 1);
      out[0] = C[0] * HALT[0] + moved[L - 1];
      // The immediates jumped to, sum_l target_l imm[l].
      mix_rows_strided(cache.jump_targets.data() + b * n, P.data() + layout.imm(), P.cols(),
                       target, L, n);
    }
    // JR's register selection sum_l c_l g_JR a[l], for the rows at once.
    cache.jump_registers.middleRows(b0, nb).noalias() =
        cache.jump_weight.middleRows(b0, nb) * P.middleCols(layout.a(), R);
  });
  // c' += lines(the immediates jumped to + the registers JR reads, sum_r jr_r R[r]).
  for (index b = begin; b < end; ++b) {
    S* values = cache.jump_targets.data() + b * n;
    mix_rows_add(values, state.registers.data() + b * R * n, cache.jump_registers.data() + b * R,
                 R, n);
    add_folded(next.data() + b * L, values, S(1), L, n);  // lines(values)
  }
}

/// Per-line control backward for the slice's rows: dcounter (B, L), dregisters (B, R n) and
/// the programs' packed gradients (ws.d_program; none when ws.program_gradients is false)
/// add the gradients of sum(next * dnext).
/// Per element, the products with the program run over its transposed fields (imm^T, a^T:
/// lines contiguous), so every inner loop is over lines or values, not a horizontal sum.
template <class S>
void control_per_line_backward(matrix<S>& dcounter, matrix<S>& dregisters,
                               backward_workspace<S>& ws, const matrix<S>& dnext,
                               const step_cache<S>& cache, const soft_state<S>& state,
                               const packed_programs<S>& programs, const program_layout& layout,
                               batch_slice<S>& slice) {
  const index L = state.counter.cols(), R = layout.R, n = layout.n;
  // Per line, summed over the slice: d g_HALT, JR, JMP (= CALL), JZ, JNZ (rows row_*), then
  // d a^T (R rows) and one row of scratch.
  slice.line_sums.setZero(control_rows + R + 1, L);
  S* d_a = slice.line_sums.data() + control_rows * L;       // (R, L)
  S* d_on = slice.line_sums.data() + (control_rows + R) * L;  // (L)
  S* sum_halt = slice.line_sums.data() + row_halt * L;
  S* sum_jr = slice.line_sums.data() + row_jr * L;
  S* sum_jump = slice.line_sums.data() + row_jump * L;
  S* sum_jz = slice.line_sums.data() + row_jz * L;
  S* sum_jnz = slice.line_sums.data() + row_jnz * L;
  programs.for_each_in(slice.begin, slice.end, [&](index p, index b0, index nb) {
    const auto i = static_cast<std::size_t>(p);
    const matrix<S>& P = programs.of(p);
    const S* G = programs.control[i].data();
    const S* jump = G + row_jump * L;
    const S* jz = G + row_jz * L;
    const S* jnz = G + row_jnz * L;
    const S* rest = G + row_rest * L;
    const S* jr = G + row_jr * L;
    const S* halt = G + row_halt * L;
    const S* a_t = programs.a_transposed[i].data();    // (R, L)
    const S* imm_t = programs.imm_transposed[i].data();  // (n, L)
    const bool program_gradients = ws.program_gradients;  // false: frozen programs
    S* dP = program_gradients ? ws.d_program(programs, p, slice.id).data() : nullptr;
    const index W = P.cols();
    for (index b = b0; b < b0 + nb; ++b) {
      const S* dn = dnext.data() + b * L;
      const S* c = state.counter.data() + b * L;
      const S* z = cache.zero_test.data() + b * L;
      const S* jumping = cache.jump_weight.data() + b * L;
      const S* regs = state.registers.data() + b * R * n;
      S* dregs = dregisters.data() + b * R * n;
      S* dc = dcounter.data() + b * L;
      S* dvalues = ws.d_jump_values.data() + b * n;
      S* djr = ws.d_jump_registers.data() + b * R;
      S* d_target = ws.d_target_line.data() + b * L;
      S* d_jump = ws.d_jump_line.data() + b * L;
      S* dzt = ws.d_zero_test.data() + b * L;
      unfold<false>(dvalues, dn, L, n);  // lines^T(dnext)
      for (index r = 0; r < R; ++r) {
        const S weight = cache.jump_registers(b, r);
        for (index j = 0; j < n; ++j) dregs[r * n + j] += weight * dvalues[j];
        djr[r] = dot(regs + r * n, dvalues, n);
      }
      mix_rows(d_target, imm_t, dvalues, n, L);  // imm[l] . dvalues
      mix_rows(d_jump, a_t, djr, R, L);          // a[l] . djr
      // The scalars of every line (control_scalars) as whole-array expressions.
      for (index l = 0; l + 1 < L; ++l) d_on[l] = dn[l + 1];  // dnext at line l + 1
      d_on[L - 1] = dn[0];
      {
        using array = Eigen::Array<S, Eigen::Dynamic, 1>;
        using view = Eigen::Map<const array>;
        using ref = Eigen::Map<array>;
        const view C(c, L), Z(z, L), DT(d_target, L), DJ(d_jump, L), DN(dn, L), DON(d_on, L),
            JUMP(jump, L), JZ(jz, L), JNZ(jnz, L), REST(rest, L), JR(jr, L), HALT(halt, L);
        ref(dc, L) += (JUMP + JZ * Z + JNZ * (S(1) - Z)) * DT + JR * DJ + HALT * DN +
                      (JZ * (S(1) - Z) + JNZ * Z + REST) * DON;
        ref(dzt, L) = C * DT - C * DON;  // ds - dq, for now
        const view DSQ(dzt, L);
        if (program_gradients) {
          ref(sum_halt, L) += C * DN - C * DON;
          ref(sum_jr, L) += C * DJ - C * DON;
          ref(sum_jump, L) += DSQ;
          ref(sum_jz, L) += DSQ * Z;
          ref(sum_jnz, L) += DSQ * (S(1) - Z);
        }
        ref(dzt, L) = DSQ * (JZ - JNZ);  // d z_l
      }
      // dP: a[l] += jumping_l djr + dzt_l R0, kept transposed (imm below, for all rows).
      const S* r0 = cache.register_zero.data() + b * R;
      for (index r = 0; r < R && program_gradients; ++r) {
        S* da = d_a + r * L;
        for (index l = 0; l < L; ++l) da[l] += djr[r] * jumping[l] + r0[r] * dzt[l];
      }
      for (index r = 0; r < R; ++r) dregs[r * n] += dot(dzt, a_t + r * L, L);  // d R[r][0]
    }
    if (!program_gradients) return;
    // dP imm[l] += sum_b target_bl dvalues_b, one product over the rows.
    ws.d_program(programs, p, slice.id).middleCols(layout.imm(), n).noalias() +=
        cache.target_weight.middleRows(b0, nb).transpose() * ws.d_jump_values.middleRows(b0, nb);
    for (index l = 0; l < L; ++l) {
      S* row = dP + l * W;
      for (index r = 0; r < R; ++r) row[layout.a() + r] += d_a[r * L + l];
      row[col_halt] += sum_halt[l];
      row[col_jr] += sum_jr[l];
      row[col_jmp] += sum_jump[l];
      row[col_call] += sum_jump[l];
      row[col_jz] += sum_jz[l];
      row[col_jnz] += sum_jnz[l];
    }
    slice.line_sums.setZero();
  });
}

/// Mean-field control forward for batch element b: next (L) from the fetched f and k, the
/// operand u and the counter c.
template <class S>
void control_mean_field_forward(S* next, const S* f, const S* k, const S* u, const S* c,
                                index L, index n) {
  const auto [s, q] = control_scalars(f, u[0]);
  next[0] = f[col_halt] * c[0] + q * c[L - 1];
  for (index l = 1; l < L; ++l) next[l] = f[col_halt] * c[l] + q * c[l - 1];
  add_folded(next, k, s, L, n);  // lines(k), lines(u)
  add_folded(next, u, f[col_jr], L, n);
}

/// Mean-field control backward for one element: df (23), dk (n), du (n), dc (L) add.
/// dvalues (n) is scratch.
template <class S>
void control_mean_field_backward(S* df, S* dk, S* du, S* dc, S* dvalues, const S* dnext,
                                 const S* f, const S* k, const S* u, const S* c, index L,
                                 index n) {
  const S z = u[0];
  const auto [s, q] = control_scalars(f, z);
  unfold<false>(dvalues, dnext, L, n);
  const S ds = dot(k, dvalues, n), d_jr = dot(u, dvalues, n);
  for (index j = 0; j < n; ++j) {
    dk[j] += s * dvalues[j];
    du[j] += f[col_jr] * dvalues[j];
  }
  S d_halt = S(0), dq = S(0);
  for (index l = 0; l < L; ++l) {
    const S d_on = dnext[l + 1 < L ? l + 1 : 0];
    d_halt += c[l] * dnext[l];
    dq += c[l] * d_on;
    dc[l] += f[col_halt] * dnext[l] + q * d_on;
  }
  df[col_halt] += d_halt - dq;
  df[col_jr] += d_jr - dq;
  df[col_jmp] += ds - dq;
  df[col_call] += ds - dq;
  df[col_jz] += (ds - dq) * z;
  df[col_jnz] += (ds - dq) * (S(1) - z);
  du[0] += (ds - dq) * (f[col_jz] - f[col_jnz]);
}

}  // namespace ncl::machine::detail
