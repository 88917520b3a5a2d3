"""What a call leaves behind: ``calls.py`` (one record per call: stats, cost, span, hooks, once),
``stats.py`` (per-provider counters and percentiles), ``telemetry.py`` (OpenTelemetry spans and
metrics, a no-op without OpenTelemetry)."""
