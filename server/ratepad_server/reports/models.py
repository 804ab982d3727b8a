"""The reports read the server's rollups (``ratepad_server.rollups``); they keep no rows of
their own."""
