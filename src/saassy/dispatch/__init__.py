"""The dispatcher and executors: claim due tasks fairly, supervise each attempt to its outcome."""
