"""Tasks: the operator's task types, admission against the plan, and the task API."""
