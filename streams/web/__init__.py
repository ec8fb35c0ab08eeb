"""Web views on the worker's HTTP server, one module per area."""
