"""Linli activities service."""

SERVICE = "activities"
