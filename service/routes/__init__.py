"""One router per resource: images, models, health (with metrics)."""
