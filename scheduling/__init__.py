"""Scheduling: provider availability, slots, booking, join links, invites and reminders."""
