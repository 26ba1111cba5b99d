"""The repair DAG's steps: each task body, reading typed inputs and returning a typed result."""
