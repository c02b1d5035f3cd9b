"""The serving frameworks users would pick instead of ganserve, serving the same ONNX generator.

Each peer runs in its own virtual environment (``bench.peers.envs``), built from
``requirements-<peer>.txt`` beside this file; its service code imports only
``bench.peers.common`` (numpy, onnxruntime, Pillow) and the framework itself.
"""
