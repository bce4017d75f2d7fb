"""Staff accounts: sign-in with lockout and rate limits, sign-out, users of a clinic."""
