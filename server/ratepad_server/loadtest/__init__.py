"""``ratepad server loadtest``: window agents and managers at a bank's peak, played by Locust
(``locustfile``, run in a subprocess only) from a plan that ``command`` prepares; ``traffic`` is
what one agent sends, from the fleet simulator's customer profile."""
