; search: linear search for a key in Mem[r0 .. r0 + r1 - 1].
; inputs:  r0 = address, r1 = length, r2 = key
; result:  r0 = offset of the first element equal to the key, or the length if none is
; clobbers: r3-r5
; steps:   halts at step 8 i + 9 when found at offset i, 8 * length + 5 when not found
search:      SET  r3, 0             ; r3 = offset i
search_loop: EQ   r4, r3, r1
             JNZ  r4, search_done   ; i == length: not found
             ADD  r5, r0, r3
             READ r5, r5
             EQ   r4, r5, r2
             JNZ  r4, search_done
             INC  r3, r3
             JMP  search_loop
search_done: MOV  r0, r3
             HALT
