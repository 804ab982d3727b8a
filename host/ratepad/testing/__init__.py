"""Testing support for projects that use ratepad: the pytest plugin (fixtures and markers)."""
