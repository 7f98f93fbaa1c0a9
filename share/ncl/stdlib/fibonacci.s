; fib: "Fibonacci from inputs a and b to recursion depth d" (the paper's phrasing):
;   fib(a, b, 0) = a,   fib(a, b, d) = fib(b, a + b, d - 1)   (mod n)
; so fib(0, 1, d) is the d-th Fibonacci number. Recursive through CALL/RET, saving ra on the
; stack (sp = r(R-2) starts at 0 and grows up through memory addresses 0, 1, ...).
; inputs:  r0 = a, r1 = b, r2 = d             result: r0        clobbers: r1-r3, sp, ra, Mem[0..d-1]
; steps:   halts at step 11 d + 4: 8 steps per level on the way down (JZ, PUSH = 2, ADD, MOV,
;          MOV, DEC, CALL) and 3 on the way back (POP = 2, RET), plus the first CALL, the base
;          case's JZ and RET, and the final HALT. Needs memory M >= d.
fib:        CALL fib_rec
            HALT
fib_rec:    JZ   r2, fib_base
            PUSH ra
            ADD  r3, r0, r1
            MOV  r0, r1
            MOV  r1, r3
            DEC  r2, r2
            CALL fib_rec
            POP  ra
fib_base:   RET
