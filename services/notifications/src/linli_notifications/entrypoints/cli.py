"""`linli-notifications migrate | worker | check-config | declare | providers` (see the README)."""

import sys

from linli_kit.service import service_main
from linli_notifications.definition import definition


def main() -> None:
    sys.exit(service_main(definition))
