"""Training a guided diffusion model on target images only: the loop and its data."""
