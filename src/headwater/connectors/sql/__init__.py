"""SQL database connectors (Postgres, MySQL/MariaDB) on one shared template."""
