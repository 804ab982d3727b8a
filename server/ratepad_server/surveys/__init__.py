"""Service-quality surveys beside the keypads: survey definitions, imported responses with their
computed report (per node and period), and return visits (回访) after a bad rating or an alert."""
