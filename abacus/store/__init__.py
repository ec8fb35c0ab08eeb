"""ClickHouse: the Store boundary, its migrations, error wrapping and Native encoding."""
