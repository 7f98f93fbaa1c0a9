; reverse: reverses the list Mem[r0 .. r0 + r1 - 1] in place.
; inputs:  r0 = address, r1 = length          result: in memory  clobbers: r0-r5
; steps:   halts at step 9 * floor(length / 2) + 6 (length >= 1), step 2 for length 0
reverse:    JZ    r1, rev_done
            ADD   r2, r0, r1
            DEC   r2, r2            ; r2 = address of the last element
rev_loop:   LT    r3, r0, r2
            JZ    r3, rev_done
            READ  r4, r0
            READ  r5, r2
            WRITE r0, r5
            WRITE r2, r4
            INC   r0, r0
            DEC   r2, r2
            JMP   rev_loop
rev_done:   HALT
