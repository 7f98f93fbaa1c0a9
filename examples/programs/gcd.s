; gcd: Euclid's algorithm by remainders, r0 = gcd(r0, r1)
; inputs:  r0 = a, r1 = b (try --set r0=24 --set r1=18)
; outputs: r0 = gcd(a, b) (gcd(24, 18) = 6), r1 = 0; r2 is scratch
; steps:   5 per remainder step + 2 (24, 18: two remainder steps, halt_step 12)
loop:   JZ   r1, done
        MOD  r2, r0, r1
        MOV  r0, r1
        MOV  r1, r2
        JMP  loop
done:   HALT
