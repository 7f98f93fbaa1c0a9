; sum_list: r2 = the sum (mod n) of the r1 cells of memory from address r0
; inputs:  r0 = address, r1 = count; memory (try --mem 0=3,1,4,1,5 --set r1=5)
; outputs: r2 = sum (3 + 1 + 4 + 1 + 5 = 14); r0 ends at address + count, r1 at 0, r3 scratch
; steps:   6 * count + 3 (count = 5: halt_step 33)
        ZERO r2
loop:   JZ   r1, done
        READ r3, r0
        ADD  r2, r2, r3
        INC  r0, r0
        DEC  r1, r1
        JMP  loop
done:   HALT
