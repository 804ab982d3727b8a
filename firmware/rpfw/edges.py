# Key pin edges between two scans, as the pin IRQ stamps them, so that a scan that comes late
# (the loop was busy: a heap collection, a flash write, a long pass) still dates each key change
# at the tick it happened (Core.scan replays them).
#
# Per key: the ticks_ms of its first and of its last edge since the last scan, and whether it
# had more than one. What lies between the first and the last edge is not kept: it is contact
# bounce, and Core.scan replays it as such.
from array import array


class Edges:
    def __init__(self, nkeys):
        self.nkeys = nkeys
        self.keys = 0  # keys with an edge (bit i = key i + 1)
        self.multi = 0  # keys with more than one edge
        self.first = array("l", [0] * nkeys)  # valid where `keys` has the bit
        self.last = array("l", [0] * nkeys)

    def stamp(self, i, t):
        # Key i's pin changed at ticks_ms t. Runs in the hard IRQ: allocates nothing.
        bit = 1 << i
        if self.keys & bit:
            self.multi |= bit
        else:
            self.keys |= bit
            self.first[i] = t
        self.last[i] = t

    def move_to(self, other):
        # Hand every edge to `other` and start afresh. Called with IRQs disabled, so no edge
        # falls between the copy and the clear; allocates nothing.
        keys = self.keys
        other.keys = keys
        other.multi = self.multi
        for i in range(self.nkeys):
            if keys & (1 << i):
                other.first[i] = self.first[i]
                other.last[i] = self.last[i]
        self.keys = 0
        self.multi = 0
