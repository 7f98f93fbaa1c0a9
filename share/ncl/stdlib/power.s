; power: r0 = r0 ** r1 (mod n), by repeated multiplication.
; inputs:  r0 = base, r1 = exponent          result: r0        clobbers: r1, r2
; steps:   halts at step 4 * r1 + 4
power:      SET  r2, 1
power_loop: JZ   r1, power_done
            MUL  r2, r2, r0
            DEC  r1, r1
            JMP  power_loop
power_done: MOV  r0, r2
            HALT
