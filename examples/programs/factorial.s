; factorial: r1 = r0! mod n
; inputs:  r0 = k (try --set r0=4)
; outputs: r1 = k! mod n (4! = 24); r0 ends at 0
; steps:   4k + 3 (k = 4: halt_step 19)
        SET  r1, 1
loop:   JZ   r0, done
        MUL  r1, r1, r0
        DEC  r0, r0
        JMP  loop
done:   HALT
