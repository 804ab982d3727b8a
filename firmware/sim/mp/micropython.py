# CPython stand-in for MicroPython's `micropython` module, so the firmware runs unchanged on
# CPython (the simulator and host-side tests). Only what the firmware uses.


def const(value):
    return value


def heap_lock():
    return 0


def heap_unlock():
    return 0


def schedule(func, arg):
    func(arg)
