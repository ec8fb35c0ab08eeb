"""Embedded parts for dev, demo, tests and CI: the Tansu broker and chDB."""
