from linli_kit.migrations import run_env
from linli_notifications.adapters.tables import metadata

run_env(metadata)
