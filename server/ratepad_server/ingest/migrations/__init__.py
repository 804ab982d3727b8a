PARTITIONED_TABLES = ("ingest_rating", "ingest_devicestatus")
