; sort: bubble sort, ascending, of Mem[r0 .. r0 + r1 - 1], in place. Each comparison writes
; min and max back (MIN/MAX, no branch), so every pass takes the same number of steps.
; inputs:  r0 = address, r1 = length          result: in memory  clobbers: r1-r6 (r6 = sp with R = 8)
; steps:   halts at step 11 k (k - 1) / 2 + 5 (k - 1) + 4 for length k >= 1, step 2 for k = 0
;          (a pass of p comparisons takes 5 + 11 p steps)
sort:       JZ    r1, sort_done
sort_pass:  DEC   r1, r1            ; r1 = comparisons in this pass
            JZ    r1, sort_done
            MOV   r2, r0            ; r2 = address i
            MOV   r3, r1            ; r3 = comparisons left in this pass
sort_inner: READ  r4, r2            ; a = Mem[i]
            INC   r2, r2
            READ  r5, r2            ; b = Mem[i + 1]
            MAX   r6, r4, r5
            WRITE r2, r6            ; Mem[i + 1] = max(a, b)
            MIN   r6, r4, r5
            DEC   r2, r2
            WRITE r2, r6            ; Mem[i] = min(a, b)
            INC   r2, r2
            DEC   r3, r3
            JNZ   r3, sort_inner
            JMP   sort_pass
sort_done:  HALT
