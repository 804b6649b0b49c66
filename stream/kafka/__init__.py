"""The streaming worker: Faust app, batch processor, table-backed state, exact timers."""
