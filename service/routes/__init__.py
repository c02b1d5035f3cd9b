"""One router per resource: images, models, health (with metrics), v2 (the Open Inference
Protocol) and admin.
"""
