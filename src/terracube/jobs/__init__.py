"""Running process graphs: synchronously for /result and the CLI, later as batch jobs."""
