"""joulecast: predict the energy of training and testing a neural network before spending it."""

__version__ = "0.1.0"
