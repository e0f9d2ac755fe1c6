"""`linli-gateway migrate | worker | check-config | republish-directory | init-keys`."""

import sys

from linli_gateway.definition import definition
from linli_kit.service import service_main


def main() -> None:
    sys.exit(service_main(definition))
