"""A config-driven PyTorch trainer for image restoration."""
__version__ = "0.1.0"
