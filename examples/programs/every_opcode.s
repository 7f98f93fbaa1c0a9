; every_opcode: runs each of the 23 opcodes at least once (and a label immediate).
; The skipped lines are traps that would set r1 = 31.
; inputs:  none
; outputs (n = 32): r0 = 6, r1 = 3, r2 = 26, r3 = 30, r4 = 7, r5 = 8, sp = 0, ra = 4;
;          Mem[2] = 1, Mem[3] = 7, Mem[10] = 17, every other cell 0; pc = 30
; steps:   halt_step 28
        NOP                     ; 0
        SET   r0, 7             ; 1
        SET   r1, 3             ; 2
        CALL  arith             ; 3: ra = 4
        JMP   after             ; 4
arith:  ADD   r2, r0, r1        ; 5: r2 = 10
        SUB   r3, r1, r0        ; 6: r3 = 3 - 7 mod 32 = 28
        MUL   r4, r0, r0        ; 7: r4 = 49 mod 32 = 17
        WRITE r2, r4            ; 8: Mem[10] = 17
        DIV   r4, r0, r1        ; 9: r4 = 2
        MOD   r5, r0, r1        ; 10: r5 = 1
        WRITE r4, r5            ; 11: Mem[2] = 1
        MIN   r4, r0, r1        ; 12: r4 = 3
        MAX   r5, r0, r1        ; 13: r5 = 7
        WRITE r4, r5            ; 14: Mem[3] = 7
        RET                     ; 15: back to line 4
after:  EQ    r2, r0, r1        ; 16: r2 = 0
        LT    r3, r1, r0        ; 17: r3 = 1
        JZ    r2, skip          ; 18: taken
        SET   r1, 31            ; 19: trap
skip:   JNZ   r3, more          ; 20: taken
        SET   r1, 31            ; 21: trap
more:   READ  r4, r4            ; 22: r4 = Mem[3] = 7
        MOV   r5, r4            ; 23: r5 = 7
        INC   r5, r5            ; 24: r5 = 8
        DEC   r0, r0            ; 25: r0 = 6
        STORE r2                ; 26: r2 = 26, this line
        SET   r3, done          ; 27: r3 = 30, a label immediate
        JR    r3                ; 28: to line 30
        SET   r1, 31            ; 29: trap
done:   STOP                    ; 30
