; absdiff: r0 = |r0 - r1|, straight-line: max(a, b) - min(a, b).
; inputs:  r0 = a, r1 = b                     result: r0        clobbers: r2, r3
; steps:   halts at step 4
absdiff:    MAX  r2, r0, r1
            MIN  r3, r0, r1
            SUB  r0, r2, r3
            HALT
