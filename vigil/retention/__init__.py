"""Retention floor, capacity model, eviction, holds and coverage."""
