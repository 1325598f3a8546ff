"""Prepared measurement campaigns (one command each), e.g. the GPU campaign."""
