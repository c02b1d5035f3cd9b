"""ganserve: the pieces every stage shares (latent contract, grid layout, version)."""

__version__ = "0.1.0"
