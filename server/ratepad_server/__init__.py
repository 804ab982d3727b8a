"""ratepad server: central collection of every window agent's ratings (Django project).

Apps, one job each: ``org`` (tree, windows, keypad bindings, staff, users), ``ingest`` (agent
keys, the upload API, quarantine), ``rollups`` (hourly aggregates kept incrementally), ``live``
(fan-out of new ratings across server instances) and ``api`` (the typed JSON API and its
OpenAPI document).
"""
