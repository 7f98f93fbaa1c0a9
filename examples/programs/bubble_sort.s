; bubble_sort: sorts memory cells 0..k-1 ascending, in place
; inputs:  r0 = k >= 1; memory (try --mem 0=5,3,4,1,2 --set r0=5)
; outputs: memory cells 0..k-1 sorted (1, 2, 3, 4, 5); r0 ends at 0, r1..r5 scratch
; steps:   8 per comparison (k(k-1)/2 of them) + 3 per swap (one per inversion)
;          + 5 per pass (k - 1) + 3 (5, 3, 4, 1, 2: 10 comparisons, 8 swaps, halt_step 127)
        DEC   r0, r0            ; i = k - 1 comparisons in the first pass
outer:  JZ    r0, done
        ZERO  r1                ; p = 0
        MOV   r2, r0            ; comparisons left in this pass
inner:  READ  r3, r1            ; x = Mem[p]
        INC   r5, r1
        READ  r4, r5            ; y = Mem[p + 1]
        LT    r5, r4, r3        ; y < x ?
        JZ    r5, noswap
        WRITE r1, r4            ; Mem[p] = y
        INC   r5, r1
        WRITE r5, r3            ; Mem[p + 1] = x
noswap: INC   r1, r1
        DEC   r2, r2
        JNZ   r2, inner
        DEC   r0, r0
        JMP   outer
done:   HALT
