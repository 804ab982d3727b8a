"""The driver's rules, sans-IO (``core``): the facades ``ratepad.Keypad`` (a thread),
``ratepad.aio`` (asyncio), the agent's device loop and the scenario runner are shells around
them."""
