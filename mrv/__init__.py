"""open-dmrv: a traceable digital MRV pipeline from raw measurements to registry issuance."""

__version__ = "0.1.0"
