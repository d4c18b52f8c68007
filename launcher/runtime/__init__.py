"""What user code calls inside a worker. Never imports the launch side."""
