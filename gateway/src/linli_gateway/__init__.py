"""Linli API gateway."""

SERVICE = "gateway"

# Errors of the gateway's own whose message (the argument at this position) reaches people: found by
# `linli-messages` like the kit's errors.
MESSAGE_ERRORS = {"AccountError": 1, "ScopeError": 1}
