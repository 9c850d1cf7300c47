"""Tracker service: legacy pose endpoints on top of Triton-served HMR2 and PHALP-style tracking."""
