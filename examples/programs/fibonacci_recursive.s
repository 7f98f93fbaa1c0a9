; fibonacci_recursive: F(k) = F(k - 1) + F(k - 2) by recursion, with CALL/RET and a stack
; in memory (sp = r(R-2) grows upwards from cell 16; PUSH/POP save ra, k and F(k - 1)).
; inputs:  r0 = k (try --set r0=5; the stack needs 2k cells, so k <= 8 with M = 32)
; outputs: r1 = F(k) mod n (F(5) = 5); r0, r2, r3 are clobbered, sp ends at 16
; steps:   k = 5: halt_step 197 (k = 6: 332, run with --steps 400)
        SET  sp, 16
        CALL fib
        HALT

; fib: r1 = F(r0). Clobbers r0, r2, r3.
fib:    SET  r3, 2
        LT   r2, r0, r3         ; k < 2 ?
        JZ   r2, recurse
        MOV  r1, r0             ; F(0) = 0, F(1) = 1
        RET
recurse:
        PUSH ra
        PUSH r0                 ; save k
        DEC  r0, r0
        CALL fib                ; r1 = F(k - 1)
        POP  r0                 ; k
        PUSH r1                 ; save F(k - 1)
        DEC  r0, r0
        DEC  r0, r0
        CALL fib                ; r1 = F(k - 2)
        POP  r2                 ; F(k - 1)
        ADD  r1, r1, r2
        POP  ra
        RET
