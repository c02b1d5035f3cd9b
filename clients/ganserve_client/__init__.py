"""Python SDK for the ganserve image generation service."""

__version__ = "0.1.0"
