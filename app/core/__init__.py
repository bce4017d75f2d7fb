"""Shared core: settings, database, models, auth, audit, errors. Imports nothing above it."""
