"""Datasets, transforms, the resumable sampler and the example-data generator."""
