"""OneRoster 1.1 CSV packages as a second roster input, mapped onto the same roster records.

Layers: `package` reads a zip or folder (the only file I/O); `manifest`, `reader`,
`checks`, `validate`, `staging` and `mapping` are pure; `importer` reads and publishes
the topics.
"""
