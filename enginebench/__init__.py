"""enginebench: reproducible end-to-end benchmarks of LLM serving engines."""

__version__ = "0.1.0"
