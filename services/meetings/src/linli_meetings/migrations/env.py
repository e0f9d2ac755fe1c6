from linli_kit.migrations import run_env
from linli_meetings.adapters.tables import metadata

run_env(metadata)
