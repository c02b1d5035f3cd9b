"""The HTTP service: serves the generators in ``models/`` as PNG grids over ONNX Runtime.

``service.app.create_app(settings)`` builds the FastAPI app; ``python -m service``
runs it with uvicorn. Nothing loads at import time, and nothing here imports torch.
"""
