"""The collector: measures the energy of training and testing a sweep of models on a device."""
