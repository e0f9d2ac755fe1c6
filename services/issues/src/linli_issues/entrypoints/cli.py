"""`linli-issues migrate | worker | check-config`."""

import sys

from linli_issues.definition import definition
from linli_kit.service import service_main


def main() -> None:
    sys.exit(service_main(definition))
