"""Tools around the firmware: build and flash, the MicroPython VM, raw-REPL simulator, doctor."""
