; factorial: r0 = r0! (mod n).
; inputs:  r0 = a                             result: r0        clobbers: r1
; steps:   halts at step 4 * a + 4
factorial:  SET  r1, 1
fact_loop:  JZ   r0, fact_done
            MUL  r1, r1, r0
            DEC  r0, r0
            JMP  fact_loop
fact_done:  MOV  r0, r1
            HALT
