"""When the framework began importing: the start of the start-up latency the log reports."""
import time

IMPORT_STARTED = time.monotonic()
