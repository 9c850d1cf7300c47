"""Export-time code: PyTorch models, exporters and local serving tools (torch lives only here)."""
