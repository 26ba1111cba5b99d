"""Durable records on the artifacts root: incidents and their occurrences, audit trails, drift baselines."""
