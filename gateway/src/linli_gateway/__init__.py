"""Linli API gateway."""

SERVICE = "gateway"
