"""Planted providers for the conformance kit's self-tests: one correct, the others each broken once.

Installed for the kit's inner pytest run through ``kit_planted-0.1.0.dist-info`` on PYTHONPATH.
"""
