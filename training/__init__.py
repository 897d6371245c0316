"""Offline side of microgan: datasets, the WGAN-GP trainer, evaluation and export.

python -m training --help
"""
