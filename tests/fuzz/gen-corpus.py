#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the hand-made seeds of tests/fuzz/corpus (seed-*).

Usage: tests/fuzz/gen-corpus.py [DIR]   (default: the corpus beside this file)

The encoding mirrors run_op() in fuzz_ops.c: byte 0 picks the slot count,
then per op a byte (kind | thread << 6) and its operands.  Keep the op
numbers below in step with the enum there.
"""
import os
import struct
import sys

(INIT, INIT_MANY, DESTROY, ADD, INC, DEC, SET, RESET, SHARE, READ, COMPARE,
 CONC_ADD, BIG_MANY, K_CREATE, K_ALLOC, K_FREE, K_ALLOC_BULK, K_FREE_BULK,
 K_SHRINK, K_DEACTIVATE, K_STATS, K_DESTROY, K_OBJ_ADD, K_CTOR_FAIL,
 K_CHURN, A_ALLOC, A_FREE, SLOTS) = range(28)

# Byte 0: index into { machine's, 1, 2, 3, 64, 4096 }.
SLOTS_DEFAULT, SLOTS_1, SLOTS_2, SLOTS_3, SLOTS_64, SLOTS_4096 = range(6)
DUAL, LAZY, EAGER = 0, 1, 2            # policy operand (modulo 3)
BAD_INIT = 7                           # policy operand 7: invalid arguments

# special[] indexes in fuzz_ops.c
SP = {'BATCH-1': 3, 'BATCH': 4, 'BATCH+1': 5, '-BATCH': 7, '2BATCH-1': 9,
      'MAX': 14, 'MIN': 15, 'MAX-100': 26, 'MIN+100': 27}


def val(v=None, special=None):
    """A value operand: small, int16, special[] or raw int64."""
    if special is not None:
        return bytes([192 + SP[special]])
    if -64 <= v < 64:
        return bytes([v + 64])
    if -32768 <= v < 32768:
        return bytes([128]) + struct.pack('<h', v)
    return bytes([224]) + struct.pack('<q', v)


def op(kind, thread=0, *operands):
    out = bytes([kind | thread << 6])
    for o in operands:
        out += o if isinstance(o, bytes) else bytes([o])
    return out


def cache_cfg(size=0, align=0, debug=False, area=False, lazy=False,
              badargs=False):
    return (size | align << 2 | debug << 4 | area << 5 | lazy << 6 |
            badargs << 7)


SEEDS = {}

SEEDS['seed-dual-upgrade'] = bytes([SLOTS_DEFAULT]) + b''.join([
    op(INIT, 0, 0, DUAL, val(5)),
    op(ADD, 0, 0, val(100)),            # owner: plain add
    op(INC, 0, 0), op(DEC, 0, 0),
    op(ADD, 1, 0, val(-7)),             # non-owner: upgrade
    op(ADD, 2, 0, val(special='BATCH+1')),
    op(READ, 3, 0),
    op(COMPARE, 1, 0, 0, val(1)), op(COMPARE, 2, 0, 1, val(0)),
    op(COMPARE, 0, 0, 2, val(0)), op(COMPARE, 0, 0, 3, val(1)),
    op(SET, 2, 0, val(-1000)), op(RESET, 3, 0),
    op(ADD, 3, 0, val(3)),
    op(INIT, 1, 1, DUAL, val(0)), op(SHARE, 1, 1), op(ADD, 2, 1, val(9)),
    op(DESTROY, 0, 0),
])

SEEDS['seed-lazy-eager-4096'] = bytes([SLOTS_4096]) + b''.join([
    op(INIT, 0, 0, LAZY, val(-3)),
    op(INIT, 1, 1, EAGER, val(40000)),
    op(ADD, 1, 0, val(special='BATCH-1')),
    op(ADD, 2, 0, val(special='BATCH-1')),
    op(ADD, 3, 0, val(special='-BATCH')),
    op(ADD, 1, 1, val(special='2BATCH-1')),
    op(ADD, 2, 1, val(-200)),
    op(COMPARE, 0, 0, 1, val(0)), op(COMPARE, 0, 1, 2, val(0)),
    op(COMPARE, 3, 1, 3, val(0)), op(COMPARE, 2, 0, 4, val(12)),
    op(READ, 1, 1), op(SET, 0, 1, val(7)), op(RESET, 1, 0),
    op(SLOTS, 2),
])

SEEDS['seed-init-many'] = bytes([SLOTS_64]) + b''.join([
    op(INIT_MANY, 0, 0, 2, LAZY, val(1)),
    op(INIT_MANY, 1, 3, 1, EAGER, val(-1)),
    op(INIT_MANY, 2, 5, 2, DUAL, val(2)),
    op(ADD, 1, 1, val(300)), op(ADD, 2, 4, val(-300)), op(ADD, 3, 6, 70),
    op(INIT, 0, 7, BAD_INIT, val(0)),
    op(DESTROY, 0, 1), op(DESTROY, 1, 4), op(DESTROY, 2, 6),
    op(INIT, 0, 1, EAGER, val(0)),
])

SEEDS['seed-conc-add'] = bytes([SLOTS_DEFAULT]) + b''.join([
    op(INIT, 0, 0, DUAL, val(0)),
    op(INIT, 1, 1, LAZY, val(0)),
    op(INIT, 2, 2, EAGER, val(0)),
    op(CONC_ADD, 0, 0, val(1), 63),
    op(CONC_ADD, 0, 1, val(special='BATCH-1'), 40),
    op(CONC_ADD, 0, 2, val(-3), 20),
    op(CONC_ADD, 0, 0, val(special='BATCH+1'), 10),
    op(COMPARE, 0, 0, 0, val(0)), op(COMPARE, 0, 1, 1, val(0)),
])

SEEDS['seed-big-many'] = bytes([SLOTS_64]) + b''.join([
    op(BIG_MANY, 1, LAZY, 0, val(3)),
    op(BIG_MANY, 2, EAGER, 1, val(-9)),
    op(BIG_MANY, 3, DUAL, 6, val(0)),
    op(BIG_MANY, 0, LAZY, 5, val(special='MAX-100')),
])

SEEDS['seed-cache-basic'] = bytes([SLOTS_DEFAULT]) + b''.join([
    op(K_CREATE, 0, 0, cache_cfg(size=1, badargs=True)),
    op(K_ALLOC, 1, 0, 0), op(K_ALLOC, 2, 0, 1), op(K_ALLOC, 1, 0, 1),
    op(K_OBJ_ADD, 2, 0, 0, val(5)), op(K_OBJ_ADD, 3, 0, 1, val(-300)),
    op(K_ALLOC_BULK, 1, 0, 64, 0), op(K_ALLOC_BULK, 2, 0, 10, 1),
    op(K_ALLOC_BULK, 0, 0, 0, 0),
    op(K_STATS, 0, 0), op(K_DESTROY, 0, 0),      # -EBUSY
    op(K_FREE, 1, 0, 0, 0), op(K_FREE_BULK, 2, 0, 64, 3),
    op(K_SHRINK, 0, 0, 0),
    op(K_FREE_BULK, 3, 0, 64, 0),
    op(K_SHRINK, 1, 0, 0), op(K_STATS, 2, 0),
    op(K_DESTROY, 0, 0),
])

SEEDS['seed-cache-rcu'] = bytes([SLOTS_DEFAULT]) + b''.join([
    op(K_CREATE, 0, 1, cache_cfg(size=2, debug=True)),
    op(K_ALLOC_BULK, 1, 1, 30, 0),
    op(K_FREE, 1, 1, 0, 1), op(K_FREE, 2, 1, 3, 1), op(K_FREE, 3, 1, 5, 1),
    op(K_STATS, 0, 1),
    op(K_SHRINK, 2, 1, 1),                       # + rcu barrier
    op(K_FREE, 0, 1, 7, 1), op(K_FREE_BULK, 1, 1, 64, 0),
    op(K_DESTROY, 0, 1),
])

SEEDS['seed-cache-deactivate'] = bytes([SLOTS_2]) + b''.join([
    op(K_CREATE, 0, 0, cache_cfg(size=3, area=True, lazy=True)),
    op(K_ALLOC_BULK, 1, 0, 40, 0), op(K_ALLOC, 2, 0, 0),
    op(K_FREE_BULK, 2, 0, 20, 0),
    op(K_DEACTIVATE, 3, 0),
    op(K_ALLOC, 1, 0, 1),                        # NOWAIT: EAGAIN
    op(K_ALLOC, 1, 0, 0),
    op(K_FREE, 2, 0, 0, 0), op(K_FREE, 2, 0, 1, 1),
    op(K_STATS, 0, 0), op(K_SHRINK, 0, 0, 1),
    op(K_FREE_BULK, 3, 0, 64, 0), op(K_STATS, 0, 0),
    op(K_DESTROY, 0, 0),
])

SEEDS['seed-ctor-fail'] = bytes([SLOTS_DEFAULT]) + b''.join([
    op(K_CREATE, 0, 1, cache_cfg(size=3, align=3)),
    op(K_CTOR_FAIL, 0, 3, 0),
    op(K_ALLOC, 1, 1, 0),                        # fails: ENOMEM from ctor
    op(K_CTOR_FAIL, 0, 2, 3),                    # positive: EINVAL
    op(K_ALLOC_BULK, 2, 1, 30, 0),
    op(K_ALLOC, 3, 1, 0), op(K_STATS, 0, 1),
    op(K_FREE, 3, 1, 0, 0), op(K_DESTROY, 1, 1),
])

SEEDS['seed-churn'] = bytes([SLOTS_DEFAULT]) + b''.join([
    op(K_CREATE, 1, 0, cache_cfg(size=0)),
    op(K_CREATE, 2, 1, cache_cfg(size=1, align=2, lazy=True)),
    op(K_CHURN, 0, 0, 31), op(K_CHURN, 0, 1, 31),
    op(K_ALLOC_BULK, 3, 1, 5, 0), op(K_OBJ_ADD, 1, 1, 2, val(77)),
    op(K_CHURN, 0, 1, 10), op(K_STATS, 0, 0), op(K_STATS, 0, 1),
    op(K_SHRINK, 1, 0, 0), op(K_DEACTIVATE, 2, 1), op(K_CHURN, 0, 1, 5),
])

SEEDS['seed-areas'] = bytes([SLOTS_3]) + b''.join([
    op(A_ALLOC, 0, 0, 0), op(A_ALLOC, 1, 1, 1 | 1 << 3),
    op(A_ALLOC, 2, 2, 4 | 2 << 3), op(A_ALLOC, 3, 3, 5),
    op(A_ALLOC, 0, 0, 6),                        # live: skipped
    op(SLOTS, 0),                                # -EBUSY
    op(A_FREE, 1, 0), op(A_FREE, 2, 1), op(A_FREE, 3, 2), op(A_FREE, 0, 3),
    op(A_ALLOC, 0, 0, 6), op(A_ALLOC, 0, 0, 7), op(A_ALLOC, 0, 0, 3 << 3),
    op(SLOTS, 1),                                # 0: nothing live
])

SEEDS['seed-one-slot'] = bytes([SLOTS_1]) + b''.join([
    op(INIT, 0, 0, DUAL, val(0)), op(INIT, 1, 1, LAZY, val(0)),
    op(ADD, 1, 0, val(special='BATCH')), op(ADD, 2, 1, val(-255)),
    op(CONC_ADD, 0, 1, val(special='BATCH-1'), 30),
    op(K_CREATE, 0, 0, cache_cfg(size=1, area=True)),
    op(K_ALLOC_BULK, 1, 0, 64, 0), op(K_FREE_BULK, 2, 0, 64, 0),
    op(K_ALLOC, 3, 0, 1), op(K_SHRINK, 0, 0, 0),
])

SEEDS['seed-int64-edges'] = bytes([SLOTS_2]) + b''.join([
    op(INIT, 0, 0, LAZY, val(special='MAX-100')),
    op(ADD, 1, 0, val(-200)), op(ADD, 2, 0, val(special='BATCH+1')),
    op(COMPARE, 0, 0, 5, val(1)), op(COMPARE, 0, 0, 0, val(0)),
    op(SET, 0, 0, val(special='MIN+100')),
    op(ADD, 1, 0, val(-200)),                    # wraps
    op(COMPARE, 0, 0, 0, val(0)), op(READ, 0, 0),
    op(INIT, 0, 1, DUAL, val(special='MAX')), op(INC, 0, 1),
    op(INIT, 0, 2, EAGER, val(special='MIN')), op(DEC, 3, 2),
])


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, 'corpus')
    os.makedirs(out, exist_ok=True)
    for name, data in sorted(SEEDS.items()):
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)


if __name__ == '__main__':
    main()
