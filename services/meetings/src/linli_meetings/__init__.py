"""Linli meetings service."""

SERVICE = "meetings"
