"""ClickHouse access: client factory, versioned migrations and batch writers."""
