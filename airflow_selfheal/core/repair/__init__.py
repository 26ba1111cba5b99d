"""The repair loop's pure parts: its dbt selectors, the manifest relations it touches, and its decisions."""
