"""The event contract in code: decoding, encoding and semantic validation of app events."""
