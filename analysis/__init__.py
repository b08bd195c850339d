"""Laptop-side analysis: run records -> the paper's figures and tables, beside the paper's own numbers."""
