"""The event catalogue's contents, one module per producer. Importing this package registers all.

Each module declares its producer's events with marshmallow schemas and registers them under
(type, version). Consumers validate what they receive against the same declaration.
"""

from linli_kit.events.contracts import accounts, activities, directory, issues, meetings, notifications

__all__ = ["accounts", "activities", "directory", "issues", "meetings", "notifications"]
