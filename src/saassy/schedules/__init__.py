"""Schedules: tasks of a fixed type and input, run on a cron expression or a fixed interval."""
