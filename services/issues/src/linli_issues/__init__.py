"""Linli issues service."""

SERVICE = "issues"
