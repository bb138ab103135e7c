"""What the checks share and are not checks themselves: clients for PostgreSQL, Redis, AWS and
backup stores, integrity verification and its verdict cache, WAL file names."""
