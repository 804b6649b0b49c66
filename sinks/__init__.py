"""Destinations that turn membership changes into effects.

`segmenter sinks` (cli, runner) reads change events, finds their actions (actions),
and hands them to a `Dispatcher` (dispatch) that delivers each destination's batch
to its sink with bounded retries (retry) and returns what failed as dead letters
(deadletter). Sinks share one interface (base): redis_sink with redis_groups and
redis_pricing, email with templates and profiles, webhook, csv_export.
`segmenter redrive` (redrive_cli, redrive) runs dead letters again. See README.md.
"""
