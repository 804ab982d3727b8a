"""Simulated USB stacks: a pyusb backend and a hidapi stand-in serving simulated keypads."""
