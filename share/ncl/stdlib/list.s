; Reductions over a list in memory: Mem[r0], Mem[r0 + 1], ..., Mem[r0 + r1 - 1].

; list_sum: r0 = the sum (mod n) of the list.
; inputs:  r0 = address, r1 = length          result: r0        clobbers: r1-r3
; steps:   halts at step 6 * length + 4
list_sum:   SET  r2, 0
sum_loop:   JZ   r1, sum_done
            READ r3, r0
            ADD  r2, r2, r3
            INC  r0, r0
            DEC  r1, r1
            JMP  sum_loop
sum_done:   MOV  r0, r2
            HALT

; list_min: r0 = the smallest element. Needs length >= 1.
; inputs:  r0 = address, r1 = length          result: r0        clobbers: r1-r3
; steps:   halts at step 6 * length - 1
list_min:   READ r2, r0
min_loop:   DEC  r1, r1
            JZ   r1, min_done
            INC  r0, r0
            READ r3, r0
            MIN  r2, r2, r3
            JMP  min_loop
min_done:   MOV  r0, r2
            HALT

; list_max: r0 = the largest element. Needs length >= 1.
; inputs:  r0 = address, r1 = length          result: r0        clobbers: r1-r3
; steps:   halts at step 6 * length - 1
list_max:   READ r2, r0
max_loop:   DEC  r1, r1
            JZ   r1, max_done
            INC  r0, r0
            READ r3, r0
            MAX  r2, r2, r3
            JMP  max_loop
max_done:   MOV  r0, r2
            HALT
