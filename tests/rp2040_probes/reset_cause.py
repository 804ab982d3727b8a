# machine.reset_cause() (tests/rp2040_facts.py RESET_CAUSES).
import machine

print(machine.reset_cause())
