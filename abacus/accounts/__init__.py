"""Staff accounts of the district portal (pure rules): passwords, credentials, sessions,
sign-in throttling, reset tokens and the audit trail's entries."""
