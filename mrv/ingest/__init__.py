"""Readers that turn raw input files into tidy frames; pure (a frame or an IngestError)."""

from mrv.ingest.invoices import read_invoices
from mrv.ingest.meters import read_meter, read_meter_files

__all__ = ["read_invoices", "read_meter", "read_meter_files"]
