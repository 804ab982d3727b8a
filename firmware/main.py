# Runs after boot.py: the keypad's device loop (returns at once in maintenance mode, leaving
# the REPL to mpremote).
from rpfw import device

device.main()
