; gcd: r0 = gcd(r0, r1) by Euclid's algorithm with MOD (gcd(a, 0) = a).
; inputs:  r0 = a, r1 = b                     result: r0        clobbers: r1, r2
; steps:   halts at step 5 k + 2, k = the number of MOD steps Euclid takes
gcd:        JZ   r1, gcd_done
            MOD  r2, r0, r1
            MOV  r0, r1
            MOV  r1, r2
            JMP  gcd
gcd_done:   HALT
