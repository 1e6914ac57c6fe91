"""Seed data that a stage needs before it takes payments (the channel configuration)."""
