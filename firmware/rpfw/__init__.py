# ratepad keypad firmware (MicroPython). Modules are small and import each other as rpfw.X.
