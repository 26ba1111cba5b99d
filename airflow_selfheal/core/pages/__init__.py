"""Every page and message the package sends: the model, its PagerDuty and Slack renderings, and their texts."""
