"""What operators watch: Prometheus metrics, error tracking, request ids in the logs."""
