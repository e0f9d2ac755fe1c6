from linli_activities.adapters.tables import metadata
from linli_kit.migrations import run_env

run_env(metadata)
