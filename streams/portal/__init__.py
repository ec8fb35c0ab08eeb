"""The district portal's services in the worker: staff accounts, browser sessions, reset
links and the list of exports, kept in memory and backed by the store."""
