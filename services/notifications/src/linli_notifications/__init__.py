"""Linli notifications service."""

SERVICE = "notifications"
