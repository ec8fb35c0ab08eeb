"""The Student Data Export: requests, scope, the CSV, its manifest, links and mail."""
