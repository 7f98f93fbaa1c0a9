; fibonacci: the iterative Fibonacci numbers, r1 = F(r0) mod n
; inputs:  r0 = k (try --set r0=7)
; outputs: r1 = F(k) mod n (F(7) = 13), r2 = F(k + 1) mod n (21); r0 ends at 0, r3 scratch
; steps:   6k + 4 (k = 7: halt_step 46)
        SET  r1, 0              ; F(i)
        SET  r2, 1              ; F(i + 1)
loop:   JZ   r0, done
        ADD  r3, r1, r2
        MOV  r1, r2
        MOV  r2, r3
        DEC  r0, r0
        JMP  loop
done:   HALT
